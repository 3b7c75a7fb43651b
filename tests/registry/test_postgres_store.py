"""The PostgreSQL registry: a schema migrated once, abandoned registrations found by their advisory
lock, secrets kept out of messages, two servers following one registry; and refused URI schemes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import requests

from scoring_server.registry import ModelRegistry, RegistryError
from scoring_server.registry.store import PENDING

from ..conftest import FIXTURES, REPO, RunningServer, clean_environment, results_of_processes
from .postgres_server import postgres_server, postgres_uri  # noqa: F401 - fixtures
from .test_follow_reference import BODY, constant_model, wait_for_version

POLL = 0.5


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoring_server", *args], cwd=cwd, capture_output=True, text=True,
                          env=clean_environment(), timeout=120)


@pytest.mark.parametrize("args", [
    ("registry", "--registry", "ftp://host/x", "list"),
    ("registry", "list", "--registry", "ftp://host/x"),
    ("serve", "-m", "models:/iris/Production", "--registry", "ftp://host/x", "-p", "0"),
])
def test_an_unsupported_scheme_is_one_line_and_makes_no_folder(tmp_path, args):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert "registry URI scheme 'ftp' is not supported" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_postgresql_needs_an_artifact_root(tmp_path):
    result = run_cli("registry", "--registry", "postgresql://u@127.0.0.1:1/db", "list", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "--artifact-root" in result.stderr


def test_a_password_never_appears_in_an_error(tmp_path):
    with pytest.raises(RegistryError) as error:
        ModelRegistry("postgresql://scoring:s3cret@127.0.0.1:1/db", artifact_root=str(tmp_path))
    assert "s3cret" not in str(error.value) and "scoring:***@127.0.0.1:1/db" in str(error.value)


def _schema_rows(uri: str, artifact_root: str, queue) -> None:
    registry = ModelRegistry(uri, artifact_root=artifact_root)
    queue.put(registry.store.schema_version)


@pytest.mark.heavy
def test_replicas_starting_at_once_migrate_the_schema_once(postgres_uri, tmp_path):
    import psycopg

    assert results_of_processes(_schema_rows, (postgres_uri, str(tmp_path)), 6) == [1] * 6
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


REGISTERING = textwrap.dedent("""
    import sys, time
    from scoring_server.registry import ModelRegistry

    uri, artifact_root = sys.argv[1:3]
    registry = ModelRegistry(uri, artifact_root=artifact_root)  # kept: its store holds the registration's lock
    registry.store.reserve_version("fraud", "src", "", {}, "d" * 32)
    print("reserved", flush=True)
    time.sleep(120)
""")


@pytest.mark.heavy
def test_a_pending_version_is_abandoned_when_its_registering_session_ends(postgres_uri, tmp_path):
    """While the registering process lives, its advisory lock keeps its pending version; once it is
    killed, PostgreSQL frees the lock and the next write deletes the version."""
    registry = ModelRegistry(postgres_uri, artifact_root=str(tmp_path))
    owner = subprocess.Popen([sys.executable, "-c", REGISTERING, postgres_uri, str(tmp_path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True, env=clean_environment())
    try:
        assert owner.stdout.readline().strip() == "reserved"
        assert registry.recover_pending() == []
        assert [(v.version, v.status) for v in registry.list_versions("fraud")] == [(1, PENDING)]
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    assert [v.version for v in registry.recover_pending()] == [1]
    assert registry.register("fraud", str(FIXTURES / "iris")).version == 2  # 1 is never given again


@pytest.mark.heavy
def test_two_servers_on_one_postgresql_registry_follow_a_promotion(postgres_uri, tmp_path):
    artifacts = tmp_path / "artifacts"
    registry = ModelRegistry(postgres_uri, artifact_root=str(artifacts))
    registry.register("iris", str(FIXTURES / "iris"))                  # v1 predicts 0
    registry.register("iris", constant_model(tmp_path / "two", 2))    # v2 predicts 2
    registry.transition("iris", 1, "Production")
    servers = [RunningServer("models:/iris/Production", "--registry", postgres_uri, "--artifact-root", str(artifacts),
                             "--poll-interval", str(POLL), workers=2,
                             env={"XDG_CACHE_HOME": str(tmp_path / f"cache{i}")}) for i in range(2)]
    try:
        for server in servers:
            response = requests.post(server.url + "/invocations", json=BODY, timeout=30)
            assert (response.headers["X-Model-Version"], response.json()["predictions"]) == ("1", [0])
        registry.transition("iris", 2, "Production", archive_existing=True)
        for server in servers:
            wait_for_version(server.url, "2")
            assert requests.post(server.url + "/invocations", json=BODY, timeout=30).json()["predictions"] == [2]
    finally:
        for server in servers:
            server.stop()
