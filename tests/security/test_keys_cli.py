"""``scoring-server keys create|list|revoke``: the key printed once, the file holding only hashes."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

from scoring_server.cli import main
from scoring_server.security.keys import KEY_PREFIX, key_digest, parse_keys, read_keys

from ..conftest import REPO


def keys(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["keys", *args], env=env)


def create(path, name: str, *scopes: str) -> str:
    result = keys("create", "--name", name, *[arg for scope in scopes for arg in ("--scope", scope)], "--file", str(path))
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_create_prints_only_the_key_on_stdout_and_stores_only_its_salted_hash(tmp_path):
    path = tmp_path / "keys.json"
    result = keys("create", "--scope", "score", "--scope", "read", "--name", "svc-a", "--file", str(path))
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    assert key.startswith(KEY_PREFIX) and len(key) >= 50
    assert "svc-a" in result.stderr and "not shown again" in result.stderr and key not in result.stderr
    text = path.read_text()
    secret = key.split("_", 2)[2]
    assert key not in text and secret not in text
    (entry,) = json.loads(text)["keys"]
    assert entry["name"] == "svc-a" and entry["scopes"] == ["read", "score"] and entry["created"].endswith("Z")
    assert set(entry) == {"name", "id", "scopes", "created", "hash"}
    algorithm, salt, digest = entry["hash"].split("$")
    assert algorithm == "sha256" and key_digest(bytes.fromhex(salt), key).hex() == digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_are_unique_and_salts_differ(tmp_path):
    path = tmp_path / "keys.json"
    issued = [create(path, f"svc{i}", "score") for i in range(5)]
    entries = read_keys(path)
    assert len(set(issued)) == 5
    assert len({e.key_id for e in entries}) == 5 and len({e.salt for e in entries}) == 5
    assert [e.key_id for e in entries] == [key.split("_")[1] for key in issued]


def test_comma_separated_scopes(tmp_path):
    path = tmp_path / "keys.json"
    create(path, "svc", "score,read")
    assert read_keys(path)[0].scopes == {"score", "read"}


def test_list_shows_names_ids_scopes_and_times_never_hashes(tmp_path):
    path = tmp_path / "keys.json"
    create(path, "svc-a", "score")
    create(path, "ops", "admin", "read")
    table = keys("list", "--file", str(path))
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SCOPES", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["svc-a", "ops"]
    assert lines[2].split()[2] == "admin,read"
    as_json = json.loads(keys("list", "--json", "--file", str(path)).stdout)
    assert [set(row) for row in as_json] == [{"name", "id", "scopes", "created"}] * 2
    hashes = [e["hash"].split("$")[2] for e in json.loads(path.read_text())["keys"]]
    for output in (table.stdout, json.dumps(as_json)):
        assert "sha256" not in output and not any(h in output for h in hashes)


def test_revoke_removes_only_that_key(tmp_path):
    path = tmp_path / "keys.json"
    create(path, "a", "score")
    create(path, "b", "read")
    result = keys("revoke", "a", "--file", str(path))
    assert result.exit_code == 0 and result.stdout == ""
    assert [e.name for e in read_keys(path)] == ["b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    missing = keys("revoke", "a", "--file", str(path))
    assert missing.exit_code == 1 and "no key named 'a'" in missing.output


def test_the_file_comes_from_the_servers_environment_variable(tmp_path):
    path = tmp_path / "keys.json"
    env = {"SCORING_SERVER_API_KEYS_FILE": str(path)}
    assert keys("create", "--scope", "read", "--name", "svc", env=env).exit_code == 0
    assert "svc" in keys("list", env=env).stdout
    result = keys("list", env={"SCORING_SERVER_API_KEYS_FILE": ""})
    assert result.exit_code == 2 and "--file" in result.output


@pytest.mark.parametrize("name", ["", "-svc", ".svc", "svc a", "svc/a", "svc\n", "a" * 65, "svc;rm", "ünï", "svc:a"])
def test_bad_names_are_refused(tmp_path, name):
    path = tmp_path / "keys.json"
    result = keys("create", "--scope", "read", "--name", name, "--file", str(path))
    assert result.exit_code == 1 and "invalid key name" in result.output
    assert not path.exists()


@pytest.mark.parametrize("scope", ["root", "Score", "", "score,"])
def test_bad_or_missing_scopes_are_refused(tmp_path, scope):
    path = tmp_path / "keys.json"
    result = keys("create", "--scope", scope, "--name", "svc", "--file", str(path))
    if scope == "score,":  # the empty part is ignored
        assert result.exit_code == 0
        return
    assert result.exit_code == 1 and "scope" in result.output and not path.exists()
    assert keys("create", "--name", "svc", "--file", str(path)).exit_code == 2  # --scope is required


def test_a_name_is_used_once(tmp_path):
    path = tmp_path / "keys.json"
    create(path, "svc", "read")
    result = keys("create", "--scope", "score", "--name", "svc", "--file", str(path))
    assert result.exit_code == 1 and "exists already" in result.output
    assert len(read_keys(path)) == 1


def test_a_broken_file_is_never_overwritten(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{broken")
    for args in (["create", "--scope", "read", "--name", "svc"], ["revoke", "svc"], ["list"]):
        result = keys(*args, "--file", str(path))
        assert result.exit_code == 1 and "not valid JSON" in result.output
    assert path.read_text() == "{broken"


def test_a_missing_folder_is_a_clear_error(tmp_path):
    result = keys("create", "--scope", "read", "--name", "svc", "--file", str(tmp_path / "nope" / "keys.json"))
    assert result.exit_code == 1 and "no such directory" in result.output


def test_concurrent_creates_lose_no_key_and_leave_no_temporary_file(tmp_path):
    from scoring_server.security.keys import create_key

    path = tmp_path / "keys.json"
    issued, failures = [], []

    def make(i: int) -> None:
        try:
            issued.append(create_key(path, f"svc{i}", ["score"])[0])
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == [] and len(issued) == 12
    assert sorted(e.name for e in read_keys(path)) == sorted(f"svc{i}" for i in range(12))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json", "keys.json.lock"]


def test_a_file_written_by_hand_in_the_documented_format_is_read(tmp_path):
    keys_ = parse_keys(json.dumps({"keys": [{"name": "a", "id": "0123456789ab", "scopes": ["read"],
                                             "created": "2024-01-01T00:00:00Z", "hash": "sha256$" + "0" * 32 + "$" + "1" * 64}]}),
                       "test")
    assert keys_[0].name == "a" and keys_[0].scopes == {"read"}


def test_the_keys_commands_import_no_serving_modules_for_help():
    code = ("import sys\nfrom scoring_server.cli import main\n"
            "for args in (['--help'], ['keys', '--help'], ['keys', 'create', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('flask', 'gunicorn', 'pandas', 'sklearn', 'scoring_server.app') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
    assert "keys" in result.stdout and "--scope" in result.stdout
