"""Registry integrity: version numbers are never given twice, a registration killed mid-copy
leaves nothing that resolves (and is cleaned up by the next write), followers tell versions apart
by UUID, older registries are migrated, and every part of the server has one name rule."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from flavors import ModelLoadError
from scoring_server.app import create_app
from scoring_server.catalog.loading import load_served_model
from scoring_server.catalog.sources import entries_from_root
from scoring_server.config import ConfigError, is_model_name, load_config, model_entry
from scoring_server.registry import ModelRegistry, RegistryError, parse_models_uri
from scoring_server.registry.store import PENDING, SCHEMA_VERSION

from ..conftest import REPO, clean_environment, constant_model, results_of_processes

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}


@pytest.fixture
def models(tmp_path) -> dict[int, Path]:
    return {value: constant_model(tmp_path / f"m{value}", float(value)) for value in (1, 2, 3)}


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def numbers(registry: ModelRegistry, name: str) -> list[tuple[int, str]]:
    return [(v.version, v.status) for v in registry.list_versions(name)]


# --- numbers and identities ----------------------------------------------------------------------

def test_a_deleted_version_number_is_never_given_again(registry, models):
    for value in (1, 2):
        registry.register("fraud", str(models[value]))
    registry.delete_version("fraud", 2)
    again = registry.register("fraud", str(models[3]))
    assert again.version == 3 and numbers(registry, "fraud") == [(1, "READY"), (3, "READY")]
    registry.delete_version("fraud", 3)
    registry.delete_version("fraud", 1)
    assert registry.register("fraud", str(models[1])).version == 4  # even with no version left


def test_every_version_has_its_own_uuid(registry, models):
    versions = [registry.register(name, str(models[1])) for name in ("a", "a", "b")]
    uuids = [v.uuid for v in versions]
    assert len(set(uuids)) == 3 and all(len(u) == 32 for u in uuids)
    assert registry.resolve_uri("models:/a/2").uuid == uuids[1]


def _serving(tmp_path, registry: ModelRegistry):
    app = create_app(load_config(env={}, overrides={"model_uri": "models:/fraud/latest",
                                                    "registry_uri": str(registry.root)}))
    client = app.test_client()

    def answer() -> tuple[str, list]:
        response = client.post("/invocations", json=ROW)
        return response.headers["X-Model-Version"], response.get_json()["predictions"]

    return app.extensions["follower"], answer


def test_a_follower_of_latest_sees_a_model_deleted_and_registered_again(tmp_path, registry, models):
    registry.register("fraud", str(models[1]))
    registry.register("fraud", str(models[2]))
    follower, answer = _serving(tmp_path, registry)
    assert answer() == ("2", [2.0])
    registry.delete_version("fraud", 2)
    registry.register("fraud", str(models[3]))
    assert follower.check() == ["models:/fraud/latest"]
    assert answer() == ("3", [3.0])


def test_a_follower_tells_versions_apart_by_uuid_not_number(tmp_path, registry, models):
    """A registry rebuilt from scratch numbers from 1 again: same number, other files, other UUID."""
    registry.register("fraud", str(models[1]))
    follower, answer = _serving(tmp_path, registry)
    assert answer() == ("1", [1.0]) and follower.check() == []
    shutil.rmtree(registry.root)
    ModelRegistry(registry.root).register("fraud", str(models[2]))
    assert follower.check() == ["models:/fraud/latest"]
    assert answer() == ("1", [2.0])  # X-Model-Version stays the number
    assert follower.check() == []


# --- pending versions ------------------------------------------------------------------------------

def test_a_pending_version_never_resolves(registry, models, monkeypatch, tmp_path):
    registry.register("fraud", str(models[1]))
    pending = registry.store.reserve_version("fraud", str(models[2]), "", {}, "f" * 32)
    monkeypatch.chdir(tmp_path)  # a pending version has no path: it must not become the working directory
    for uri in (f"models:/fraud/{pending.version}",):
        with pytest.raises(RegistryError, match="has not completed"):
            registry.resolve_uri(uri)
        with pytest.raises(RegistryError):
            load_served_model(uri, str(registry.root))
    assert registry.resolve_uri("models:/fraud/latest").version == 1
    registry.store.update_version("fraud", 1, stage="Production")
    with pytest.raises(RegistryError, match="no version 2"):
        registry.set_alias("fraud", "champion", pending.version)


_REGISTER_SLOWLY = textwrap.dedent("""
    import shutil, sys, time
    from pathlib import Path
    from scoring_server.registry import ModelRegistry

    root, source, ready = sys.argv[1:4]
    copy, copied = shutil.copyfile, []

    def copy_then_wait(src, dst, *args, **kwargs):
        result = copy(src, dst, *args, **kwargs)
        copied.append(dst)
        if len(copied) == 5:
            Path(ready).write_text("copying")
        if len(copied) >= 5:
            time.sleep(0.5)  # the rest of the copy takes longer than the test waits
        return result

    shutil.copyfile = copy_then_wait
    ModelRegistry(root).register("big", source)
""")


def large_model(path: Path, files: int = 200, size: int = 64 * 1024) -> Path:
    constant_model(path, 7.0)
    ballast = path / "artifacts"
    ballast.mkdir()
    for i in range(files):
        (ballast / f"part-{i:03}.bin").write_bytes(os.urandom(size))
    return path


def test_a_registration_killed_mid_copy_never_serves_and_is_cleaned_up_by_the_next_write(tmp_path, registry, models):
    registry.register("big", str(models[1]))
    source, ready = large_model(tmp_path / "large"), tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", _REGISTER_SLOWLY, str(registry.root), str(source), str(ready)],
                               cwd=REPO, env=clean_environment(), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), process.stderr.read().decode() if process.poll() is not None else "no copy in 60 s"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    folder = registry.root / "models" / "big"
    assert numbers(registry, "big") == [(1, "READY"), (2, PENDING)]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".staging-") and p.is_dir()]  # a partial copy
    with pytest.raises(RegistryError, match="has not completed"):
        registry.resolve_uri("models:/big/2")
    assert registry.resolve_uri("models:/big/latest").version == 1

    again = ModelRegistry(registry.root).register("big", str(models[3]))  # the next write recovers
    assert again.version == 3
    assert numbers(registry, "big") == [(1, "READY"), (3, "READY")]
    assert sorted(p.name for p in folder.iterdir()) == ["1", "3"]  # no partial copy, no lock file left
    assert load_served_model("models:/big/latest", str(registry.root))[0].predict(
        {"a": [1.0], "b": [2.0]}).tolist() == [3.0]


def test_a_live_registration_is_not_taken_for_an_abandoned_one(registry, models):
    """While a registering process holds its version's lock, other writes leave the version alone;
    once the lock is released without the version completing (the process died), the next write
    deletes it and its partial copy."""
    import fcntl

    version_uuid = "a" * 32
    (registry.root / "models" / "fraud").mkdir(parents=True)
    owner = os.open(registry._lock_file("fraud", version_uuid), os.O_RDWR | os.O_CREAT)
    fcntl.flock(owner, fcntl.LOCK_EX)  # what a registering process holds until its version is READY
    pending = registry.store.reserve_version("fraud", "src", "", {}, version_uuid)
    registry._staging("fraud", version_uuid).mkdir()
    registry.register("fraud", str(models[2]))  # another registration: recovers nothing
    assert numbers(registry, "fraud") == [(pending.version, PENDING), (2, "READY")]
    assert registry._staging("fraud", version_uuid).is_dir()
    os.close(owner)  # the owner dies: the kernel releases its lock, the lock file stays
    registry.register("fraud", str(models[3]))
    assert numbers(registry, "fraud") == [(2, "READY"), (3, "READY")]
    assert sorted(p.name for p in (registry.root / "models" / "fraud").iterdir()) == ["2", "3"]


def test_pending_versions_without_a_lock_file_expire_after_the_timeout(tmp_path, models):
    """Left by an older scoring-server (no lock file): abandoned once older than the timeout."""
    registry = ModelRegistry(tmp_path / "registry", pending_timeout_seconds=60)
    old = registry.store.reserve_version("fraud", "src", "", {}, "b" * 32)
    young = registry.store.reserve_version("fraud", "src", "", {}, "c" * 32)
    with sqlite3.connect(registry.store.path) as db:
        db.execute("UPDATE model_versions SET created_at = ? WHERE version = ?", (time.time() - 120, old.version))
    legacy_staging = registry.root / "models" / "fraud" / f".{old.version}-k2j3h4"
    legacy_staging.mkdir(parents=True)
    os.utime(legacy_staging, (time.time() - 120, time.time() - 120))
    assert [v.version for v in registry.recover_pending()] == [old.version]
    assert numbers(registry, "fraud") == [(young.version, PENDING)] and not legacy_staging.exists()


# --- layouts ---------------------------------------------------------------------------------------

#: The layout scoring-server wrote before layout versions existed (``PRAGMA user_version`` 0).
LAYOUT_0 = """
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name), version INTEGER NOT NULL, source TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT 'None', description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, path TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, version));
CREATE TABLE aliases (
    name TEXT NOT NULL REFERENCES registered_models(name), alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias));
"""


def old_registry(root: Path, models: dict[int, Path]) -> Path:
    """A layout-0 registry: fraud versions 1 and 3 (2 was deleted), 4 pending for two hours."""
    root.mkdir()
    now = time.time()
    with sqlite3.connect(root / "registry.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(LAYOUT_0)
        db.execute("INSERT INTO registered_models VALUES ('fraud', '', '{}', ?, ?)", (now, now))
        for version, status, created in ((1, "READY", now), (3, "READY", now), (4, PENDING, now - 7200)):
            path = ""
            if status == "READY":
                path = str(shutil.copytree(models[version], root / "models" / "fraud" / str(version)))
            db.execute("INSERT INTO model_versions VALUES ('fraud', ?, 'src', 'None', '', '{}', ?, ?, ?, ?)",
                       (version, status, created, created, path))
        db.execute("INSERT INTO aliases VALUES ('fraud', 'champion', 3)")
    return root


def test_a_layout_0_registry_is_migrated(tmp_path, models):
    root = old_registry(tmp_path / "old", models)
    registry = ModelRegistry(root)
    assert registry.store.schema_version == SCHEMA_VERSION
    uuids = [v.uuid for v in registry.list_versions("fraud")]
    assert len(set(uuids)) == 3 and all(len(u) == 32 for u in uuids)
    assert registry.resolve_uri("models:/fraud@champion").version == 3
    assert ModelRegistry(root).get_version("fraud", 1).uuid == uuids[0]  # migrated once, not on every open
    assert registry.register("fraud", str(models[2])).version == 5  # after every number it recorded
    assert numbers(registry, "fraud") == [(1, "READY"), (3, "READY"), (5, "READY")]  # 4 was abandoned


def _first_uuid(root: str, queue) -> None:
    queue.put(ModelRegistry(root).get_version("fraud", 1).uuid)


def test_processes_opening_an_old_registry_at_once_migrate_it_once(tmp_path, models):
    root = str(old_registry(tmp_path / "old", models))
    assert len(set(results_of_processes(_first_uuid, (root,), 4))) == 1


def test_a_registry_of_a_newer_layout_is_refused(registry):
    registry.create_model("made")  # the first write makes the registry
    with sqlite3.connect(registry.store.path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RegistryError, match="newer than this scoring-server"):
        ModelRegistry(registry.root)


# --- one name rule ---------------------------------------------------------------------------------

NAMES = ["fraud", "Fraud-2.v1_x", "9", "x" * 200, "x" * 201, "", "fraud\n", "\nfraud", "-x", ".x", "_x", "..",
         "a/b", "../../x", "a b", "é", "a\x00b", "a@b", "x" * 5000]


def _accepts(check, name) -> bool:
    try:
        check(name)
    except (RegistryError, ConfigError):
        return False
    return True


def test_the_registry_models_files_and_model_roots_share_one_name_rule(registry, models, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in NAMES:
        config = _accepts(lambda n: model_entry(n, "/m", "models file"), name)
        registered = _accepts(lambda n: registry.create_model(n), name)
        assert config == registered == is_model_name(name), name
        if name and "/" not in name and "\x00" not in name and name not in ("..",) and len(name) < 255:
            folder = root / name
            shutil.copytree(models[1], folder)
            assert any(entry.name == name for entry in entries_from_root(root)) == is_model_name(name), name
            shutil.rmtree(folder)


def test_names_ending_in_a_newline_are_refused_everywhere(registry, models):
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.register("fraud\n", str(models[1]))
    with pytest.raises(ConfigError, match="name"):
        model_entry("fraud\n", "/m", "models file")
    with pytest.raises(RegistryError):
        parse_models_uri("models:/fraud\n/1")
    registry.register("fraud", str(models[1]))
    with pytest.raises(RegistryError):
        parse_models_uri("models:/fraud/1\n")


def test_a_models_file_with_a_bad_name_is_refused(tmp_path, models):
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"a/b": str(models[1])}))
    with pytest.raises(ConfigError, match="a/b"):
        create_app(load_config(env={}, overrides={"models_file": str(path)}))


def test_a_version_that_cannot_be_resolved_is_a_clear_load_error(registry):
    with pytest.raises((RegistryError, ModelLoadError), match="does not exist"):
        load_served_model("models:/ghost/1", str(registry.root))
