"""The admin API (POST /models, DELETE /models/NAME) as an attacker who reaches the port sees it:
it loads only models:/ URIs and model directories inside --allowed-model-roots, refuses every
other path with one answer whether or not it exists, takes only valid names, and callers without
the admin scope see no local paths, no load failure details and no other models' names.

In-process (the answers do not depend on gunicorn); tests/serving/test_multi_model.py runs the
admin API on a real 2-worker server."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from scoring_server.app import create_app
from scoring_server.cli import main
from scoring_server.config import ConfigError, load_config
from scoring_server.registry import ModelRegistry
from scoring_server.security import auth
from scoring_server.security.keys import create_key

from ..conftest import InProcessServer, constant_model
from .test_safe_loading import code_running_pickle_model, ran

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
REFUSED = "allowed model roots"


@pytest.fixture
def world(tmp_path) -> SimpleNamespace:
    """A root with two models and symlinks, a model outside it whose unpickling runs code (it
    appends to ``marker``), a sibling folder whose name starts like the root's, keys of each scope."""
    root = tmp_path / "root"
    constant_model(root / "m1", 1.0)
    constant_model(root / "m2", 2.0)
    broken = constant_model(root / "broken", 9.0)
    (broken / "model.pkl").write_bytes(b"not a pickle")
    outside, marker = tmp_path / "outside", tmp_path / "marker"
    code_running_pickle_model(outside / "evil", marker)
    code_running_pickle_model(tmp_path / "root-evil" / "m", marker)  # "/root-evil" starts with "/root"
    (root / "link-out").symlink_to(outside / "evil")
    (root / "dir-link-out").symlink_to(outside)
    (root / "link-in").symlink_to(root / "m2")
    keys_file = tmp_path / "keys.json"
    keys = {name: create_key(keys_file, name, scopes)[0] for name, scopes in
            {"admin": ["admin", "read", "score"], "reader": ["read", "score"], "scorer": ["score"]}.items()}
    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({"first": str(root / "m1"), "broken": str(broken)}))
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("alpha", str(root / "m2"))
    app = InProcessServer(None, models_file=str(models_file), admin_api=True, api_keys_file=str(keys_file),
                          allowed_model_roots=str(root), registry_uri=str(registry.root))
    return SimpleNamespace(tmp=tmp_path, root=root, outside=outside, marker=marker, keys=keys, app=app,
                           keys_file=keys_file, models_file=models_file)


def call(world, method: str, path: str, key: str = "admin", body=None):
    headers = {"Authorization": f"Bearer {world.keys[key]}"} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return world.app.request(method, path, json.dumps(body) if body is not None else None, headers)


def add(world, name: str, uri: str, key: str = "admin"):
    return call(world, "POST", "/models", key, {"name": name, "uri": uri})


def served(world) -> list[str]:
    return [m["name"] for m in call(world, "GET", "/models").json()["models"]]


# --- starting the admin API --------------------------------------------------------------------

def test_the_admin_api_needs_allowed_model_roots_to_start(world):
    base = {"models_file": str(world.models_file), "admin_api": True, "api_keys_file": str(world.keys_file)}
    with pytest.raises(ConfigError, match="--allowed-model-roots DIR"):
        create_app(load_config(env={}, overrides=base))
    with pytest.raises(ConfigError, match="allowed_model_roots: no such directory"):
        create_app(load_config(env={}, overrides={**base, "allowed_model_roots": str(world.tmp / "nope")}))
    result = CliRunner().invoke(main, ["serve", "--models", str(world.models_file), "--admin-api",
                                       "--api-keys", str(world.keys_file), "-p", "0"])
    assert result.exit_code == 1 and "--allowed-model-roots" in result.stderr


# --- what may be added ---------------------------------------------------------------------------

def test_model_directories_inside_a_root_are_added_as_their_real_path(world):
    real_m2 = os.path.realpath(world.root / "m2")
    for name, uri in [("extra", str(world.root / "m2")), ("by-file-uri", f"file://{world.root}/m2"),
                      ("by-link", str(world.root / "link-in")), ("dotted", f"{world.root}/./m2")]:
        added = add(world, name, uri)
        assert added.status_code == 201 and added.json() == {"name": name, "uri": real_m2}, added.text
        answer = call(world, "POST", f"/models/{name}/invocations", body=ROW)
        assert answer.json() == {"predictions": [2.0]}


def test_models_uris_are_added_as_they_are(world):
    added = add(world, "alpha", "models:/alpha/1")
    assert added.status_code == 201 and added.json()["uri"] == "models:/alpha/1"
    answer = call(world, "POST", "/models/alpha/invocations", body=ROW)
    assert answer.json() == {"predictions": [2.0]} and answer.headers["X-Model-Version"] == "1"
    for bad in ("models:/../x/1", "models:/a/b/c", "models:/alpha", "models:/alpha/1\n"):
        assert add(world, "beta", bad).status_code == 400


def refused_uris(world) -> list[str]:
    """Local URIs the admin API must refuse, with one answer whether or not they exist."""
    root, outside = str(world.root), str(world.outside)
    return [
        f"{outside}/evil", f"{outside}/does-not-exist", "/etc", "/", "/proc/self/cwd", "/dev/null",
        # .. in every spelling, including ones whose real path is inside the root
        f"{root}/../outside/evil", f"{root}/m1/../../outside/evil", f"{root}/m1/../m2", f"{root}/m1/..",
        f"{root}/./../outside/evil", f"{root}//m1/../../outside/evil", "/" + "../" * 20 + outside.lstrip("/") + "/evil",
        f"file://{root}/%2e%2e/outside/evil", f"file://{root}/..%2foutside%2fevil", f"file://{root}/m1/%2E%2E/m2",
        # symlinks out of the root
        f"{root}/link-out", f"{root}/dir-link-out/evil", f"file://{root}/link-out",
        # the root itself, a sibling whose name starts like it, things inside that are not model directories
        root, root + "/", f"{root}-evil/m", f"{root}-evil", f"{root}/link-out/", f"{root}/does-not-exist", f"{root}/m1/MLmodel",
        f"{root}/m1/model.pkl", f"{root}/" + "a" * 5000,
        # outside paths as file URIs
        f"file://{outside}/evil", f"file://localhost{outside}/evil", f"file:{outside}/evil",
        # relative paths (to what? refused)
        "m1", "./m1", "root/m1", "~/m1", "~root", "file:m1", ".",
    ]


def test_local_paths_outside_the_roots_are_refused_alike_and_nothing_runs(world):
    answers = {}
    for i, uri in enumerate(refused_uris(world)):
        response = add(world, f"probe{i}", uri)
        assert response.status_code == 403, (uri, response.text)
        answers[uri] = (response.json()["error_code"], response.json()["message"])  # request_id differs
    assert len(set(answers.values())) == 1, "refusals differ: the API tells paths apart"
    message = next(iter(answers.values()))[1]
    assert REFUSED in message and str(world.tmp) not in message
    assert ran(world.marker) == 0
    assert served(world) == ["broken", "first"]


def test_malformed_uris_are_bad_requests_that_say_nothing_of_the_file_system(world):
    root = str(world.root)
    for uri in [f"{root}/m1\x00", f"{root}/m1\n", f"{root}/\tm1", "s3://bucket/m1", "http://127.0.0.1/m1",
                "hdfs:///m1", f"file://evil.example{root}/m1", f"file://{root}/m1?x=1", f"file://{root}/m1#x", ""]:
        response = add(world, "bad", uri)
        assert response.status_code == 400, (uri, response.text)
        assert str(world.tmp) not in response.json()["message"]
    assert ran(world.marker) == 0 and served(world) == ["broken", "first"]


NAMES = ["../../x", "a/b", "", "x" * 5000, "x" * 201, "x\n", "\nx", "-x", ".x", "..", "a b", "é", "a\x00b",
         "a%2fb", " x", "x\r\n", "a\\b", "_x"]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_names_outside_the_one_rule_are_refused(world, name):
    response = add(world, name, str(world.root / "m2"))
    assert response.status_code == 400 and "name" in response.json()["message"]
    assert len(response.text) < 600  # a 5,000-character name is not echoed back whole
    assert served(world) == ["broken", "first"]


def test_names_the_rule_allows_are_added(world):
    for name in ("x" * 200, "Fraud-2.v1_x", "9lives"):
        assert add(world, name, str(world.root / "m2")).status_code == 201


# --- who may do and see what ------------------------------------------------------------------

def test_only_admin_keys_add_or_remove_models(world):
    for key in ("reader", "scorer"):
        assert add(world, "extra", str(world.root / "m2"), key).status_code == 403
        assert call(world, "DELETE", "/models/first", key).status_code == 403
    assert add(world, "extra", str(world.root / "m2"), key=None).status_code == 401
    assert call(world, "DELETE", "/models/first", None).status_code == 401
    assert served(world) == ["broken", "first"]
    assert call(world, "DELETE", "/models/first").status_code == 200
    assert served(world) == ["broken"]


def test_the_admin_routes_ask_for_the_admin_scope_themselves(world, monkeypatch):
    """Should the route table ever open them to readers, the routes still refuse."""
    monkeypatch.setitem(auth.ENDPOINT_SCOPES, "models.add_model", auth.READ)
    monkeypatch.setitem(auth.ENDPOINT_SCOPES, "models.remove_model", auth.READ)
    assert add(world, "extra", str(world.root / "m2"), "reader").status_code == 403
    assert call(world, "DELETE", "/models/first", "reader").status_code == 403
    assert served(world) == ["broken", "first"]


def test_callers_without_admin_see_no_local_paths(world):
    add(world, "alpha", "models:/alpha/1")
    for key in ("admin", "reader"):
        listed = {m["name"]: m for m in call(world, "GET", "/models", key).json()["models"]}
        described = call(world, "GET", "/models/first", key)
        assert described.status_code == 200 and described.json()["loaded"]
        assert listed["alpha"]["uri"] == "models:/alpha/1"
        if key == "admin":
            assert listed["first"]["uri"] == str(world.root / "m1") == described.json()["uri"]
        else:
            assert listed["first"]["uri"] is None and described.json()["uri"] is None
            assert str(world.tmp) not in call(world, "GET", "/models", key).text + described.text


def test_load_failure_details_go_to_admins_and_the_log_only(world, caplog):
    for key in ("scorer", "reader", "scorer"):  # the failure is remembered: later answers too
        answer = call(world, "POST", "/models/broken/invocations", key, ROW)
        assert answer.status_code == 503 and answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        message = answer.json()["message"]
        assert "'broken' cannot be loaded" in message and str(world.tmp) not in message and "pkl" not in message
    admin = call(world, "POST", "/models/broken/invocations", "admin", ROW).json()["message"]
    assert str(world.root / "broken") in admin
    assert str(world.root / "broken") in caplog.text


def test_policy_refusals_say_why_without_paths(world, tmp_path):
    app = InProcessServer(None, models_file=str(world.models_file), model_formats="skops",
                          api_keys_file=str(world.keys_file))
    answer = app.post(ROW, path="/models/first/invocations", Authorization=f"Bearer {world.keys['scorer']}")
    assert answer.status_code == 503
    assert "loading policy" in answer.json()["message"] and str(world.tmp) not in answer.text


def test_unknown_names_list_the_models_only_to_callers_who_may_list_them(world):
    hidden = call(world, "POST", "/models/nope/invocations", "scorer", ROW)
    shown = call(world, "POST", "/models/nope/invocations", "reader", ROW)
    assert hidden.status_code == shown.status_code == 404
    assert "first" not in hidden.json()["message"] and "first" in shown.json()["message"]


def test_an_added_directory_swapped_for_a_symlink_out_is_not_loaded(world):
    assert add(world, "extra", str(world.root / "m2")).status_code == 201
    os.rename(world.root / "m2", world.tmp / "moved")
    (world.root / "m2").symlink_to(world.outside / "evil")
    answer = call(world, "POST", "/models/extra/invocations", body=ROW)
    assert answer.status_code == 503 and "no longer" in answer.json()["message"]
    assert ran(world.marker) == 0


def test_deleted_models_can_be_added_back_only_from_the_roots(world):
    assert call(world, "DELETE", "/models/first").status_code == 200
    assert add(world, "first", str(world.outside / "evil")).status_code == 403
    assert add(world, "first", str(world.root / "m2")).status_code == 201
    assert call(world, "POST", "/models/first/invocations", body=ROW).json() == {"predictions": [2.0]}
    assert ran(world.marker) == 0
