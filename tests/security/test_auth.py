"""Who may do what: API keys with scopes, checked by one before_request for every route (in-process).

Every route's scope, the 401/403 answers and their logs, both key headers, malformed and forged
keys, unknown paths, routes without a scope (refused), and the keys file re-read without a restart.
"""
from __future__ import annotations

import json
import logging
import os

import pytest
from click.testing import CliRunner
from flask import g, jsonify

from scoring_server.app import close_app, create_app
from scoring_server.cli import main
from scoring_server.config import load_config
from scoring_server.security import caller_has_scope
from scoring_server.security import auth
from scoring_server.security.keys import KeysError, KeyStore, create_key, key_digest, revoke_key

from ..conftest import FIXTURES, InProcessResponse, InProcessServer, assert_error, constant_models

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
IRIS_ROW = {"inputs": {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}
HOLDERS = {"scorer": ["score"], "reader": ["read"], "operator": ["admin"], "everything": ["score", "read", "admin"]}
REALM = 'Bearer realm="scoring-server"'


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """A keys file with one key per holder; returns (path, {holder: key})."""
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return path, {name: create_key(path, name, scopes)[0] for name, scopes in HOLDERS.items()}


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    return constant_models(tmp_path_factory.mktemp("models"), 2)


@pytest.fixture(scope="module")
def fleet(keys, model_root):
    """Two models, the admin API on, API keys required."""
    server = InProcessServer(None, model_root=str(model_root), admin_api=True, allowed_model_roots=str(model_root),
                             api_keys_file=str(keys[0]))
    yield server
    close_app(server.app)


@pytest.fixture(scope="module")
def iris_keyed(keys):
    return InProcessServer(FIXTURES / "iris", api_keys_file=str(keys[0]))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# (method, path, body, scope, status with the scope)
ROUTES = [
    ("POST", "/invocations", ROW, "score", 200),
    ("POST", "/models/m1/invocations", ROW, "score", 200),
    ("GET", "/models", None, "read", 200),
    ("GET", "/models/m1", None, "read", 200),
    ("GET", "/version", None, "read", 200),
    ("HEAD", "/version", None, "read", 200),
    ("POST", "/models", {"name": "m1", "uri": "ROOT/m0"}, "admin", 409),  # past the check: m1 exists already
    ("DELETE", "/models/nope", None, "admin", 404),
]


def call(server: InProcessServer, method: str, path: str, body, headers: dict[str, str]):
    headers = {**headers, "X-Model-Name": "m0"}
    if body is None:
        return server.request(method, path, headers=headers)
    return server.request(method, path, json.dumps(body), {**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("method,path,body,scope,allowed_status", ROUTES, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_each_route_needs_its_scope_and_only_it(fleet, keys, model_root, method, path, body, scope, allowed_status):
    _, issued = keys
    if body is not None and "uri" in body:
        body = {**body, "uri": body["uri"].replace("ROOT", str(model_root))}
    for holder, scopes in HOLDERS.items():
        response = call(fleet, method, path, body, bearer(issued[holder]))
        if scope in scopes:
            assert response.status_code == allowed_status, (holder, response.text)
        else:
            assert response.status_code == 403, (holder, response.text)
            if method != "HEAD":
                assert_error(response, 403, "PERMISSION_DENIED", repr(scope))
    response = call(fleet, method, path, body, {})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == REALM


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_ping_and_health_stay_open(fleet, iris_keyed, path, method):
    for server in (fleet, iris_keyed):
        assert server.request(method, path).status_code == 200
        assert server.request(method, path, headers={"X-API-Key": "ss_forged_key"}).status_code == 200


def test_the_single_model_server_scores_with_a_score_key_only(iris_keyed, keys):
    _, issued = keys
    assert iris_keyed.post(IRIS_ROW, **bearer(issued["scorer"])).json() == {"predictions": [0]}
    assert_error(iris_keyed.post(IRIS_ROW, **bearer(issued["reader"])), 403, "PERMISSION_DENIED")
    assert_error(iris_keyed.post(IRIS_ROW), 401, "UNAUTHENTICATED")


def test_401_body_header_and_log_without_a_key(iris_keyed, caplog):
    with caplog.at_level(logging.WARNING, logger="scoring_server.security.auth"):
        response = iris_keyed.post(IRIS_ROW)
    body = assert_error(response, 401, "UNAUTHENTICATED", "Authorization: Bearer", "X-API-Key")
    assert set(body) == {"error_code", "message", "request_id"}
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.headers["Content-Type"] == "application/json"
    assert "X-Model-Name" not in response.headers  # nothing about the model before authentication
    assert [r.getMessage() for r in caplog.records] == ["401 POST '/invocations': no key"]


def test_401_for_an_unknown_key_logs_unknown_key_never_the_key(iris_keyed, keys, caplog):
    _, issued = keys
    forged = issued["scorer"][:-4] + "AAAA"
    with caplog.at_level(logging.WARNING, logger="scoring_server.security.auth"):
        response = iris_keyed.post(IRIS_ROW, **{"X-API-Key": forged})
    assert_error(response, 401, "UNAUTHENTICATED", "not valid")
    assert response.headers["WWW-Authenticate"] == REALM
    assert [r.getMessage() for r in caplog.records] == ["401 POST '/invocations': unknown key"]
    assert forged not in caplog.text and forged.split("_")[-1] not in caplog.text


def test_403_logs_the_keys_name_never_the_key(iris_keyed, keys, caplog):
    _, issued = keys
    with caplog.at_level(logging.WARNING, logger="scoring_server.security.auth"):
        response = iris_keyed.post(IRIS_ROW, **bearer(issued["reader"]))
    body = assert_error(response, 403, "PERMISSION_DENIED", "'score'")
    assert "WWW-Authenticate" not in response.headers and set(body) == {"error_code", "message", "request_id"}
    assert [r.getMessage() for r in caplog.records] == ["403 POST '/invocations': key 'reader' lacks scope 'score'"]
    assert issued["reader"] not in caplog.text


def test_both_headers_carry_a_key_and_the_bearer_scheme_is_case_insensitive(iris_keyed, keys):
    key = keys[1]["reader"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"Authorization": f"bearer {key}"},
                    {"Authorization": f"BEARER  {key} "}, {"X-API-Key": key}, {"x-api-key": f" {key}"},
                    {"Authorization": f"Bearer {key}", "X-API-Key": key}):
        assert iris_keyed.get("/version", **headers).status_code == 200, headers


def malformed_credentials(key: str) -> dict[str, dict[str, str]]:
    """Header sets that must all be refused 401 although a valid key may be in them somewhere."""
    key_id, secret = key[3:].split("_", 1)
    other = "ss_" + key_id + "_" + ("A" * len(secret))
    return {
        "empty bearer": {"Authorization": "Bearer "},
        "bearer without value": {"Authorization": "Bearer"},
        "bare key in Authorization": {"Authorization": key},
        "basic scheme": {"Authorization": "Basic " + key},
        "token scheme": {"Authorization": f"Token {key}"},
        "empty X-API-Key": {"X-API-Key": ""},
        "whitespace X-API-Key": {"X-API-Key": "   "},
        "wrong secret, right id": {"X-API-Key": other},
        "truncated": {"X-API-Key": key[:-1]},
        "extended": {"X-API-Key": key + "A"},
        "id only": {"X-API-Key": f"ss_{key_id}_"},
        "no prefix": {"X-API-Key": key[3:]},
        "other prefix": {"X-API-Key": "sk" + key[2:]},
        "uppercased": {"X-API-Key": key.upper()},
        "very long": {"X-API-Key": key + "A" * 10_000},
        "non-ascii": {"X-API-Key": key[:-1] + "é"},
        "two keys in bearer": {"Authorization": f"Bearer {key} {key}"},
        "comma-joined repeat": {"X-API-Key": f"{key}, {key}"},
        "valid bearer, different X-API-Key": {"Authorization": f"Bearer {key}", "X-API-Key": other},
        "valid X-API-Key, different bearer": {"Authorization": f"Bearer {other}", "X-API-Key": key},
        "valid X-API-Key, Basic Authorization": {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": other},
        "key in a cookie": {"Cookie": f"api_key={key}"},
        "key in another header": {"X-Api-Token": key},
    }


def test_malformed_forged_and_misplaced_keys_are_401(iris_keyed, keys):
    key = keys[1]["everything"]
    cases = malformed_credentials(key)
    refused = {}
    for label, headers in cases.items():
        response = iris_keyed.request("GET", "/version", headers={k: v.encode("utf-8").decode("latin-1")
                                                                  for k, v in headers.items()})
        refused[label] = response.status_code
    assert refused == {label: 401 for label in cases}
    assert len(cases) == 23


@pytest.mark.parametrize("query", ["api_key", "key", "access_token", "token", "X-API-Key"])
def test_a_key_in_the_query_string_is_ignored(iris_keyed, keys, query):
    key = keys[1]["everything"]
    assert_error(iris_keyed.get(f"/version?{query}={key}"), 401, "UNAUTHENTICATED")
    assert iris_keyed.get(f"/version?{query}={key}", **{"X-API-Key": key}).status_code == 200


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("GET", "/models/m1/invocations/x"),
                                         ("POST", "/admin"), ("PUT", "/invocations"), ("GET", "/invocations")])
def test_unknown_paths_and_methods_need_a_valid_key_of_any_scope(fleet, keys, method, path):
    """So that callers without a key cannot tell which routes exist (401 whatever the path)."""
    _, issued = keys
    for headers in ({}, {"X-API-Key": "ss_0123456789ab_forged"}):
        assert_error(fleet.request(method, path, headers=headers), 401, "UNAUTHENTICATED")
    expected = 404 if method == "GET" and path != "/invocations" or path == "/admin" else 405
    for holder in HOLDERS:
        assert fleet.request(method, path, headers={"X-API-Key": issued[holder]}).status_code == expected


def test_every_endpoint_of_every_kind_of_server_has_a_scope(keys, model_root):
    """A route added without an entry in ENDPOINT_SCOPES fails here (and is refused at run time)."""
    fleet = create_app(load_config(env={}, overrides={"model_root": str(model_root), "admin_api": True,
                                                      "allowed_model_roots": str(model_root),
                                                      "api_keys_file": str(keys[0])}))
    try:
        single = create_app(load_config(env={}, overrides={"model_uri": str(FIXTURES / "iris")}))
        endpoints = {rule.endpoint for app in (fleet, single) for rule in app.url_map.iter_rules()}
    finally:
        close_app(fleet)
    assert endpoints - {"static"} <= set(auth.ENDPOINT_SCOPES)
    assert set(auth.ENDPOINT_SCOPES.values()) <= {auth.OPEN, "score", "read", "admin"}


def app_with_extra_route(keys_file=None):
    """The iris app with a route /extra (endpoint "extra") that reports what the caller may do."""
    overrides = {"model_uri": str(FIXTURES / "iris")}
    if keys_file:
        overrides["api_keys_file"] = str(keys_file)
    app = create_app(load_config(env={}, overrides=overrides))
    app.add_url_rule("/extra", "extra", lambda: jsonify(
        scopes=sorted(g.caller_scopes) if "caller_scopes" in g else None,
        admin=caller_has_scope("admin"), name=g.get("caller_name")))
    return app


def test_a_route_without_a_scope_is_refused_to_every_key(keys, caplog):
    path, issued = keys
    client = app_with_extra_route(path).test_client()
    assert_error(InProcessResponse(client.get("/extra")), 401, "UNAUTHENTICATED")
    with caplog.at_level(logging.ERROR, logger="scoring_server.security.auth"):
        for holder in HOLDERS:
            response = client.get("/extra", headers=bearer(issued[holder]))
            assert response.status_code == 403 and response.json["error_code"] == "PERMISSION_DENIED"
    assert "'extra' has no entry in security.auth.ENDPOINT_SCOPES" in caplog.text


def test_routes_see_the_callers_scopes_through_g_and_caller_has_scope(keys, monkeypatch):
    path, issued = keys
    monkeypatch.setitem(auth.ENDPOINT_SCOPES, "extra", "read")
    client = app_with_extra_route(path).test_client()
    assert client.get("/extra", headers=bearer(issued["reader"])).json == {
        "scopes": ["read"], "admin": False, "name": "reader"}
    assert client.get("/extra", headers=bearer(issued["everything"])).json == {
        "scopes": ["admin", "read", "score"], "admin": True, "name": "everything"}


def test_on_an_open_route_a_caller_without_a_valid_key_has_no_scope(keys, monkeypatch):
    path, issued = keys
    monkeypatch.setitem(auth.ENDPOINT_SCOPES, "extra", auth.OPEN)
    client = app_with_extra_route(path).test_client()
    nobody = {"scopes": [], "admin": False, "name": None}
    assert client.get("/extra").json == nobody
    assert client.get("/extra", headers={"X-API-Key": issued["reader"] + "x"}).json == nobody
    assert client.get("/extra", headers=bearer(issued["operator"])).json == {
        "scopes": ["admin"], "admin": True, "name": "operator"}


def test_without_keys_every_route_is_open_and_caller_scopes_unset(iris_app):
    client = app_with_extra_route().test_client()
    assert client.get("/extra").json == {"scopes": None, "admin": True, "name": None}
    assert iris_app.get("/version").status_code == 200
    assert iris_app.post(IRIS_ROW).status_code == 200
    assert "api_keys" not in iris_app.app.extensions


# --- the keys file: start-up, changes while serving -----------------------------------------------

def test_new_and_revoked_keys_take_effect_without_a_restart(tmp_path):
    path = tmp_path / "keys.json"
    first, _ = create_key(path, "first", ["read"])
    server = InProcessServer(FIXTURES / "iris", api_keys_file=str(path))
    store = server.app.extensions["api_keys"]
    store.check_interval = 0  # check the file at every request (1 s in production)
    second = CliRunner().invoke(main, ["keys", "create", "--scope", "read", "--name", "second", "--file", str(path)])
    assert second.exit_code == 0
    key = second.stdout.strip()
    assert server.get("/version", **bearer(key)).status_code == 200
    assert CliRunner().invoke(main, ["keys", "revoke", "first", "--file", str(path)]).exit_code == 0
    assert_error(server.get("/version", **bearer(first)), 401, "UNAUTHENTICATED")
    assert server.get("/version", **bearer(key)).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_file_is_looked_at_once_per_interval_at_most(tmp_path, monkeypatch):
    path = tmp_path / "keys.json"
    create_key(path, "first", ["read"])
    clock = Clock()
    store = KeyStore(path, check_interval=1.0, clock=clock)
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(p) or real_stat(p, *a, **k))
    key, _ = create_key(path, "second", ["score"])
    stats.clear()
    for _ in range(100):
        clock.now += 0.009
        assert store.authenticate(key) is None  # 0.9 s later: not looked at yet
    assert stats == []
    clock.now += 0.1
    assert store.authenticate(key).name == "second"
    assert len(stats) == 1
    for _ in range(50):
        store.authenticate(key)
    assert len(stats) == 1


def test_a_file_turning_bad_keeps_the_last_good_keys_and_logs_once(tmp_path, caplog):
    path = tmp_path / "keys.json"
    key, _ = create_key(path, "first", ["read"])
    clock = Clock()
    store = KeyStore(path, clock=clock)
    with caplog.at_level(logging.ERROR, logger="scoring_server.security.keys"):
        for content in ("{not json", '{"keys": [{"name": "x"}]}'):
            path.write_text(content)
            for _ in range(3):
                clock.now += 1.5
                assert store.authenticate(key).name == "first"
        path.unlink()
        clock.now += 1.5
        assert store.authenticate(key).name == "first"
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 3 and "not valid JSON" in errors[0] and "needs name, id" in errors[1] and "gone" in errors[2]
    assert all("keeping the 1 keys read before" in e for e in errors)
    new, _ = create_key(path, "second", ["score"])
    clock.now += 1.5
    assert store.authenticate(new).name == "second" and store.authenticate(key) is None


def test_an_unknown_key_id_costs_one_hash_like_a_wrong_secret(tmp_path, monkeypatch):
    """No early exit that would let response times tell a known key id from an unknown one."""
    from scoring_server.security import keys as keys_module

    path = tmp_path / "keys.json"
    key, _ = create_key(path, "first", ["read"])
    store = KeyStore(path)
    hashed = []
    monkeypatch.setattr(keys_module, "key_digest", lambda salt, k: hashed.append(k) or key_digest(salt, k))
    key_id, secret = key[3:].split("_", 1)
    assert store.authenticate(f"ss_{key_id}_{'A' * len(secret)}") is None
    assert store.authenticate(f"ss_{'0' * len(key_id)}_{secret}") is None
    assert store.authenticate(key) is not None
    assert len(hashed) == 3


@pytest.mark.parametrize("content,problem", [
    (None, "no such file"),
    ("", "not valid JSON"),
    ("[]", 'must hold {"keys": [...]}'),
    ('{"keys": [{"name": "a"}]}', "needs name, id, scopes, created and hash"),
    ('{"keys": [{"name": "a", "id": "0123456789ab", "scopes": ["root"], "created": "x", "hash": "h"}]}',
     "unknown scope 'root'"),
    ('{"keys": [{"name": "a", "id": "0123456789ab", "scopes": ["read"], "created": "x", "hash": "plain"}]}',
     "hash must be sha256$"),
    ('{"version": 2, "keys": []}', "version 2"),
])
def test_a_bad_keys_file_stops_the_server_from_starting(tmp_path, monkeypatch, content, problem):
    from scoring_server import cli

    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KeysError, match="API keys file") as caught:
        create_app(load_config(env={}, overrides={"model_uri": str(FIXTURES / "iris"), "api_keys_file": str(path)}))
    assert problem in str(caught.value) and str(path) in str(caught.value)
    monkeypatch.setattr("scoring_server.server.run", lambda app, config, listener: pytest.fail("started"))
    result = CliRunner().invoke(cli.main, ["serve", "-m", str(FIXTURES / "iris"), "--api-keys", str(path),
                                           "-p", "0"])  # any free port: serve binds before loading
    assert result.exit_code == 1 and "refusing to serve:" in result.output and problem in result.output


def test_the_admin_api_refuses_to_start_without_keys(model_root, monkeypatch, tmp_path):
    from scoring_server import cli

    monkeypatch.setattr("scoring_server.server.run", lambda app, config, listener: pytest.fail("started"))
    result = CliRunner().invoke(cli.main, ["serve", "--model-root", str(model_root), "--admin-api",
                                           "--allowed-model-roots", str(model_root), "-p", "0"],
                                env={"TMPDIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "refusing to serve: the admin API (--admin-api)" in result.output and "--api-keys FILE" in result.output
    assert list(tmp_path.iterdir()) == []  # refused before the admin API made its changes file
    with pytest.raises(KeysError, match="admin API"):
        create_app(load_config(env={}, overrides={"model_root": str(model_root), "admin_api": True,
                                                  "allowed_model_roots": str(model_root)}))


def test_a_revoked_key_name_can_be_reused_but_the_old_key_stays_dead(tmp_path):
    path = tmp_path / "keys.json"
    old, _ = create_key(path, "svc", ["score"])
    store = KeyStore(path, check_interval=0)
    revoke_key(path, "svc")
    new, _ = create_key(path, "svc", ["score"])
    assert store.authenticate(old) is None and store.authenticate(new).name == "svc"
