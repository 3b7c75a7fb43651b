"""CORS for listed origins (in-process), and HTTPS with keys re-read in every worker (a real server)."""
from __future__ import annotations

import re
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from scoring_server.config import ConfigError, load_config
from scoring_server.security.keys import create_key, revoke_key
from scoring_server.server import gunicorn_options

from ..conftest import FIXTURES, InProcessServer, RunningServer, assert_error

IRIS_ROW = {"inputs": {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}
LISTED = "https://a.example"
OTHER_LISTED = "http://localhost:3000"
UNLISTED = "https://evil.example"


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return path, create_key(path, "browser", ["score", "read"])[0]


@pytest.fixture(scope="module")
def cors_app(keys_file):
    return InProcessServer(FIXTURES / "iris", api_keys_file=str(keys_file[0]),
                           cors_origins="https://A.example/, http://localhost:3000")


def preflight(server, origin: str, path: str = "/invocations", method: str = "POST"):
    return server.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", ["/invocations", "/version", "/nope", "/ping"])
@pytest.mark.parametrize("origin", [LISTED, OTHER_LISTED])
def test_a_listed_origins_preflight_is_204_without_a_key_for_any_path(cors_app, origin, path):
    response = preflight(cors_app, origin, path)
    assert response.status_code == 204 and response.content == b""
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, HEAD, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, X-API-Key, Content-Type, X-Model-Name, X-Request-ID",
        "Access-Control-Max-Age": "600",
    }
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", [UNLISTED, "https://a.example.evil.example", "http://a.example", "https://a.example:8443",
                                    "null", "HTTPS://A.EXAMPLE", "https://a.example/"])
def test_an_unlisted_origins_preflight_gets_no_cors_headers(cors_app, origin):
    response = preflight(cors_app, origin)
    assert_error(response, 401, "UNAUTHENTICATED")  # not a preflight we answer: an OPTIONS needing a key
    assert cors_headers(response) == {}


def test_answers_to_listed_origins_carry_the_origin_errors_included(cors_app, keys_file):
    _, key = keys_file
    scored = cors_app.post(IRIS_ROW, Origin=LISTED, **{"X-API-Key": key})
    assert scored.status_code == 200
    assert scored.headers["Access-Control-Allow-Origin"] == LISTED
    assert "X-Model-Name" in scored.headers["Access-Control-Expose-Headers"]
    assert "Origin" in scored.headers["Vary"]
    refused = cors_app.post(IRIS_ROW, Origin=OTHER_LISTED)
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == OTHER_LISTED
    bad = cors_app.post("{", Origin=LISTED, **{"X-API-Key": key})
    assert bad.status_code == 400 and bad.headers["Access-Control-Allow-Origin"] == LISTED


def test_answers_to_unlisted_or_no_origin_carry_no_cors_headers(cors_app, keys_file):
    _, key = keys_file
    for headers in ({"Origin": UNLISTED}, {}, {"Origin": "null"}):
        response = cors_app.post(IRIS_ROW, **headers, **{"X-API-Key": key})
        assert response.status_code == 200 and cors_headers(response) == {}
        assert "Origin" in response.headers["Vary"]  # caches must not give one origin's answer to another


def test_cors_is_off_by_default(keys_file):
    server = InProcessServer(FIXTURES / "iris", api_keys_file=str(keys_file[0]))
    response = preflight(server, LISTED)
    assert response.status_code == 401 and cors_headers(response) == {}
    response = server.post(IRIS_ROW, Origin=LISTED, **{"X-API-Key": keys_file[1]})
    assert response.status_code == 200 and cors_headers(response) == {} and "Vary" not in response.headers


def test_cors_without_keys_answers_preflights_and_marks_answers(iris_app):
    server = InProcessServer(FIXTURES / "iris", cors_origins=[LISTED])
    assert preflight(server, LISTED).status_code == 204
    assert server.post(IRIS_ROW, Origin=LISTED).headers["Access-Control-Allow-Origin"] == LISTED
    assert cors_headers(preflight(server, UNLISTED)) == {}


@pytest.mark.parametrize("value,problem", [
    ("*", "'*' is not allowed"), ("null", "'null' is not allowed"), ("a.example", "not an origin"),
    ("https://a.example/app", "not an origin"), ("https://a.example?x=1", "not an origin"),
    ("https://user@a.example", "not an origin"), ("https://a.example, *", "'*' is not allowed"),
])
def test_bad_origins_are_refused_by_key(value, problem):
    with pytest.raises(ConfigError, match="cors_origins") as caught:
        load_config(env={"SCORING_SERVER_CORS_ORIGINS": value})
    assert problem in str(caught.value)


def test_origins_from_a_file_list_a_variable_or_a_flag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cors_origins: [https://a.example, 'http://[::1]:8080']\n")
    assert load_config(path, env={}).cors_origins == ["https://a.example", "http://[::1]:8080"]
    assert load_config(env={"SCORING_SERVER_CORS_ORIGINS": " https://B.example ,"}).cors_origins == ["https://b.example"]
    assert load_config(env={}).cors_origins == []


# --- TLS ------------------------------------------------------------------------------------------

def test_tls_needs_both_files_that_exist(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="keyfile: HTTPS needs both"):
        load_config(env={}, overrides={"certfile": str(cert)})
    with pytest.raises(ConfigError, match="certfile: HTTPS needs both"):
        load_config(env={}, overrides={"keyfile": str(cert)})
    with pytest.raises(ConfigError, match="keyfile: no such file"):
        load_config(env={}, overrides={"certfile": str(cert), "keyfile": str(tmp_path / "nope.pem")})
    config = load_config(env={}, overrides={"certfile": str(cert), "keyfile": str(cert)})
    assert {"certfile": str(cert), "keyfile": str(cert)}.items() <= gunicorn_options(config).items()
    assert "certfile" not in gunicorn_options(load_config(env={}))


class HttpsServer(RunningServer):
    """A RunningServer answering HTTPS only, trusted through ``ca_file``."""

    def __init__(self, ca_file: str, *args, **kwargs) -> None:
        self.ca_file = ca_file
        super().__init__(*args, **kwargs)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        self.url = self.url.replace("http://", "https://")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/ping", timeout=1, verify=self.ca_file).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer /ping in time:\n{self.stop()}")


@pytest.fixture(scope="module")
def https_server(tmp_path_factory, keys_file):
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(folder / "cert.pem"), append=True)
    keys_path = folder / "keys.json"
    key = create_key(keys_path, "first", ["score"])[0]
    server = HttpsServer(str(folder / "ca.pem"), FIXTURES / "iris", "--certfile", str(folder / "cert.pem"),
                         "--keyfile", str(folder / "key.pem"), "--api-keys", str(keys_path), workers=2)
    yield server, keys_path, key
    server.stop()


def test_https_with_a_certificate_the_client_verifies(https_server):
    server, _, key = https_server
    assert server.url.startswith("https://127.0.0.1:")
    response = requests.post(server.url + "/invocations", json=IRIS_ROW, headers={"Authorization": f"Bearer {key}"},
                             verify=server.ca_file, timeout=30)
    assert response.json() == {"predictions": [0]}
    assert_error(requests.post(server.url + "/invocations", json=IRIS_ROW, verify=server.ca_file, timeout=30),
                 401, "UNAUTHENTICATED")
    with pytest.raises(requests.exceptions.SSLError):  # not trusted without the test CA
        requests.get(server.url + "/ping", timeout=10)
    with pytest.raises(requests.ConnectionError):  # no plain HTTP on the TLS port
        requests.get(server.url.replace("https://", "http://") + "/ping", timeout=10)
    context = ssl.create_default_context(cafile=server.ca_file)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_keys_are_re_read_by_every_worker_without_a_restart(https_server):
    server, keys_path, first = https_server

    def statuses(key: str, count: int = 16) -> set[int]:
        # Concurrent requests, each on a new connection: both (sync) workers answer some of them.
        def one(_) -> int:
            return requests.get(server.url + "/version", headers={"X-API-Key": key}, verify=server.ca_file,
                                timeout=30).status_code
        with ThreadPoolExecutor(4) as pool:
            return set(pool.map(one, range(count)))

    assert statuses(first) == {403}  # a score key on a read route: known to the workers, wrong scope
    second = create_key(keys_path, "second", ["read"])[0]
    assert statuses(second, 4) <= {200, 401}
    time.sleep(1.2)  # every worker looks at the file again at its first request a second after its last look
    assert statuses(second) == {200}
    revoke_key(keys_path, "second")
    time.sleep(1.2)
    assert statuses(second) == {401}
    assert statuses(first) == {403}
    rereads = re.findall(r"\[(\d+)\] \[INFO\] scoring_server.security.keys: Re-read API keys file", server.output())
    assert len(set(rereads)) == 2 and len(rereads) == 4, server.output()  # each worker, each change, once
