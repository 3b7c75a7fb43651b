"""The server process under hostile or unlucky clients (issue 11, findings 5–8), on real gunicorn
servers over loopback sockets:

5. slow clients (a byte a second) do not stop ``/ping`` nor normal clients;
6. SIGTERM drains: ``/ping`` answers 503, requests in flight and already received are answered,
   kept-alive connections are closed cleanly, and no request is reset;
7. a request past ``request_timeout`` gets a JSON 504 on every worker type, and the worker goes on
   serving (or, all its threads stuck, is replaced);
8. every error of the HTTP layer (gunicorn's parser) is MLflow-style JSON, never an HTML page.

Every load loop here is bounded in count and time, and talks to 127.0.0.1 only.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import requests

from scoring_server.config import load_config
from scoring_server.server import ScoringServerApplication, gunicorn_options

from ..conftest import FIXTURES, REPO, RunningServer, free_port, worker_pids

RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
IRIS_BODY = json.dumps({"dataframe_records": [RECORD]}).encode()

SLOW_MODEL = textwrap.dedent('''
    import time

    from flavors.python_model import PythonModel, set_model


    class Slow(PythonModel):
        """Sleeps, or spins in Python, for model_input["seconds"] before answering."""

        def predict(self, context, model_input, params=None):
            seconds = float(model_input["seconds"].iloc[0])
            if model_input["how"].iloc[0] == "spin":
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    pass
            else:
                time.sleep(seconds)
            return model_input["seconds"].to_numpy()


    set_model(Slow())
''')


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> Path:
    from flavors.python_function import save_model
    from flavors.signature import infer_signature

    root = tmp_path_factory.mktemp("slow")
    (root / "slow_model.py").write_text(SLOW_MODEL)
    example = pd.DataFrame({"seconds": [0.0], "how": ["sleep"]})
    save_model(root / "model", python_model=str(root / "slow_model.py"), input_example=example,
               signature=infer_signature(example))
    return root / "model"


def slow_body(seconds: float, how: str = "sleep") -> bytes:
    return json.dumps({"dataframe_records": [{"seconds": seconds, "how": how}]}).encode()


def post(port: int, body: bytes, timeout: float = 30) -> tuple[int, dict, dict]:
    """One POST /invocations on a new connection: status, JSON body, headers (lower-cased)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, half_close: bool = False, timeout: float = 10) -> bytes:
    """Send ``data`` as it is and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def assert_json_error(raw: bytes, status: int, error_code: str = "BAD_REQUEST") -> dict:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    got, headers, body = parse_response(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json", raw[:300]
    payload = json.loads(body)
    assert payload["error_code"] == error_code and payload["message"], payload
    assert b"<html" not in raw.lower()
    return payload


# --- 8. errors from the HTTP layer are JSON --------------------------------------------------------

HOST = b"Host: 127.0.0.1\r\n"
HTTP_LAYER_ERRORS = {
    "request_line_too_long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "header_too_large": (b"GET /ping HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "too_many_headers": (b"GET /ping HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: a\r\n" % i for i in range(200))
                         + b"\r\n", 431),
    "invalid_method": (b"G@T /ping HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "invalid_version": (b"GET /ping HTTP/9.9\r\n" + HOST + b"\r\n", 400),
    "not_http": (b"hello world\r\n\r\n", 400),
    "bad_chunk_size": (b"POST /invocations HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
    "chunk_without_crlf": (b"POST /invocations HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 400),
    "duplicate_content_type": (b"POST /invocations HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                               b"Content-Type: text/csv\r\nContent-Length: 2\r\n\r\n{}", 400),
    "length_and_chunked": (b"POST /invocations HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n{}", 400),
}


@pytest.fixture(scope="module", params=["default", "sync"])
def any_worker_server(request):
    """iris on the default worker class (thread) and on sync (one worker: a crash would show)."""
    extra = ("--worker-class", "sync") if request.param == "sync" else ()
    server = RunningServer(FIXTURES / "iris", *extra, workers=1)
    yield server
    server.stop()


@pytest.mark.parametrize("name", HTTP_LAYER_ERRORS)
def test_http_layer_errors_are_json(any_worker_server, name):
    data, status = HTTP_LAYER_ERRORS[name]
    pids = worker_pids(any_worker_server.process.pid)
    assert_json_error(raw_exchange(any_worker_server.port, data), status)
    assert any_worker_server.get("/ping").status_code == 200
    assert worker_pids(any_worker_server.process.pid) == pids


def test_a_request_cut_short_is_answered_as_json(any_worker_server):
    head = b"POST /invocations HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n"
    raw = raw_exchange(any_worker_server.port, head + b"{}", half_close=True)
    assert_json_error(raw, 400)


# --- 5. slow clients ------------------------------------------------------------------------------

def test_the_request_reader_finds_where_each_request_ends():
    from scoring_server.workers.reader import AT_ONCE, MORE, WHOLE, RequestReader

    def feed(data: bytes, max_body: int = 1000) -> tuple[int, int]:
        reader, buffer = RequestReader(8190, 65536, max_body), bytearray()
        for byte in data:  # a byte at a time, as the slowest client sends
            buffer.append(byte)
            state = reader.feed(buffer)
            if state != MORE:
                return state, len(buffer)
        return MORE, len(buffer)

    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\n"
    get = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    assert feed(get + b"GET") == (WHOLE, len(get))
    assert feed(head + b"Content-Length: 5\r\n\r\nhello") == (WHOLE, len(head) + 26)
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    assert feed(chunked + b"NEXT") == (WHOLE, len(chunked))
    assert feed(head + b"Content-Length: 5000\r\n\r\n")[0] == AT_ONCE  # the app's 413, unread
    assert feed(head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")[0] == AT_ONCE  # the parser's 400
    assert feed(head + b"Transfer-Encoding: chunked\r\n\r\n2000\r\n" + b"a" * 1100)[0] == AT_ONCE
    assert feed(head + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n")[0] == AT_ONCE
    assert feed(b"GET /" + b"a" * 9000)[0] == AT_ONCE  # the parser's 414
    assert feed(head + b"X-Slow: " + b"a" * 100)[0] == MORE


class SlowClients:
    """``count`` connections sending a request a byte a second (headers, or a body after its
    headers), for ``seconds`` at most; then closed."""

    def __init__(self, port: int, count: int, seconds: float) -> None:
        self.port, self.stop_at = port, time.monotonic() + seconds
        self.opened = 0
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _client(self, i: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        self.opened += 1
        with sock:
            if i % 2:  # a slow body behind complete headers
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100000\r\n\r\n")
            else:  # slow headers
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
            try:
                while time.monotonic() < self.stop_at:
                    sock.send(b"a" if i % 2 else b"X")
                    time.sleep(1)
            except OSError:
                pass

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=max(self.stop_at - time.monotonic(), 0) + 10)


def probe_while(port: int, until: float, bound: float) -> Counter:
    """GET /ping and POST /invocations, one after the other, until ``until``: what happened,
    with anything slower than ``bound`` seconds counted as such."""
    outcomes = Counter()
    while time.monotonic() < until:
        for path in ("/ping", "/invocations"):
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=bound)
            try:
                if path == "/ping":
                    conn.request("GET", path)
                else:
                    conn.request("POST", path, IRIS_BODY, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                outcome = f"{path} {response.status}"
                if time.monotonic() - started > bound:
                    outcome += " slow"
            except OSError as exc:
                outcome = f"{path} {type(exc).__name__}"
            finally:
                conn.close()
            outcomes[outcome] += 1
        time.sleep(0.2)
    return outcomes


@pytest.mark.parametrize("extra", [(), pytest.param(("--threads", "8"), marks=pytest.mark.heavy)],
                         ids=["default", "threads_8"])
def test_200_slow_clients_starve_neither_ping_nor_scoring(extra):
    server = RunningServer(FIXTURES / "iris", *extra, workers=2)
    try:
        slow = SlowClients(server.port, 200, seconds=8)
        time.sleep(1.5)  # every slow client has connected and started
        outcomes = probe_while(server.port, time.monotonic() + 5, bound=2.0)
        slow.join()
        assert slow.opened >= 190
        assert set(outcomes) == {"/ping 200", "/invocations 200"}, outcomes
        assert outcomes["/ping 200"] >= 10
    finally:
        server.stop()


def nginx_config_from_docs() -> str:
    """The nginx configuration docs/security.md gives for sync workers, as written there."""
    text = (REPO / "docs" / "security.md").read_text()
    section = text.split("## Slow clients and worker model", 1)[1].split("\n## ", 1)[0]
    return section.split("```nginx\n", 1)[1].split("```", 1)[0]


@pytest.mark.heavy
def test_nginx_in_front_of_sync_workers_holds_200_slow_clients(tmp_path):
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        pytest.fail("nginx is not installed: run `apt-get install nginx` (scripts/test.sh installs it)")
    documented = nginx_config_from_docs()
    server = RunningServer(FIXTURES / "iris", "--worker-class", "sync", workers=2)
    proxy_port = free_port()
    config = documented.replace("proxy_pass http://127.0.0.1:5000;", f"proxy_pass http://127.0.0.1:{server.port};")
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{proxy_port};")
    assert config.count(str(server.port)) == 1 and config.count(str(proxy_port)) == 1
    # What only a test needs: nginx in the foreground, with its own pid file, log and temporary files.
    temp_paths = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = (f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
              + config.replace("http {\n", "http {\n" + temp_paths, 1))
    (tmp_path / "nginx.conf").write_text(config)
    proxy = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{proxy_port}/ping", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")
        slow = SlowClients(proxy_port, 200, seconds=8)
        time.sleep(1.5)
        outcomes = probe_while(proxy_port, time.monotonic() + 5, bound=2.0)
        slow.join()
        assert slow.opened >= 190
        assert set(outcomes) == {"/ping 200", "/invocations 200"}, outcomes
    finally:
        proxy.terminate()
        proxy.wait(10)
        server.stop()


def test_a_request_head_slower_than_header_timeout_gets_a_json_408():
    server = RunningServer(FIXTURES / "iris", workers=1, env={"SCORING_SERVER_HEADER_TIMEOUT": "1",
                                                              "SCORING_SERVER_BODY_TIMEOUT": "1"})
    try:
        for partial in (b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"):
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(partial)
                raw = b""
                while chunk := sock.recv(65536):
                    raw += chunk
            assert 0.9 < time.monotonic() - started < 4
            assert "timeout" in assert_json_error(raw, 408)["message"]
        assert server.get("/ping").status_code == 200
    finally:
        server.stop()


# --- 6. SIGTERM drains ----------------------------------------------------------------------------

class KeepAliveClients:
    """``count`` clients each POSTing in a loop on one kept-alive connection (a new one after a
    ``Connection: close``), until refused or ``seconds`` have passed; every outcome counted."""

    def __init__(self, port: int, count: int, seconds: float, body: bytes = IRIS_BODY) -> None:
        self.port, self.body, self.stop_at = port, body, time.monotonic() + seconds
        self.outcomes: Counter = Counter()
        self.signalled = False
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome + (" after" if self.signalled else "")] += 1

    def _client(self) -> None:
        conn = None
        while time.monotonic() < self.stop_at:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/invocations", self.body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                self._count(f"{response.status}")
                if response.will_close:
                    conn.close()
                    conn = None
            except ConnectionRefusedError:
                self._count("refused")
                return
            except OSError as exc:  # ConnectionResetError, RemoteDisconnected (a ConnectionResetError too)...
                self._count(type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
                if time.monotonic() > self.stop_at:
                    return

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=max(self.stop_at - time.monotonic(), 0) + 15)


def drain_under_load(*extra: str, clients: int = 16) -> Counter:
    server = RunningServer(FIXTURES / "iris", *extra, workers=2)
    load = KeepAliveClients(server.port, clients, seconds=20)
    time.sleep(1.5)
    load.signalled = True
    os.kill(server.process.pid, signal.SIGTERM)
    load.join()
    server.stop()
    return load.outcomes


@pytest.mark.parametrize("extra", [(), ("--threads", "4"), ("--worker-class", "sync")],
                         ids=["default", "threads_4", "sync"])
def test_sigterm_under_16_keep_alive_clients_resets_no_request(extra):
    outcomes = drain_under_load(*extra)
    errors = {outcome: n for outcome, n in outcomes.items() if outcome not in ("200", "200 after", "refused after")}
    assert errors == {}, outcomes
    assert outcomes["200"] > 100 and outcomes["refused after"] == 16, outcomes


@pytest.mark.heavy
@pytest.mark.parametrize("run", range(5))
def test_sigterm_under_load_resets_no_request_run_after_run(run):
    outcomes = drain_under_load("--threads", "4", clients=32)
    assert set(outcomes) <= {"200", "200 after", "refused after"}, outcomes


@pytest.mark.parametrize("worker_class", ["thread", "sync"])
def test_while_draining_ping_is_503_and_requests_in_flight_are_answered(slow_model, worker_class):
    extra = ("--worker-class", worker_class) if worker_class == "sync" else ("--threads", "2")
    server = RunningServer(slow_model, *extra, workers=1)
    answers = {}

    def in_flight():
        answers["slow"] = post(server.port, slow_body(2))

    try:
        kept_alive, kept_alive_too = (http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                                      for _ in range(2))
        for connection in (kept_alive, kept_alive_too):
            connection.request("GET", "/ping")
            connection.getresponse().read()
        thread = threading.Thread(target=in_flight)
        thread.start()
        time.sleep(0.5)
        queued = socket.create_connection(("127.0.0.1", server.port))
        queued.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        os.kill(server.process.pid, signal.SIGTERM)
        time.sleep(0.3)
        if worker_class == "thread":  # a kept-alive connection: answered, then closed
            kept_alive_too.request("GET", "/health")  # liveness: draining is alive, not ready
            response = kept_alive_too.getresponse()
            response.read()
            assert response.status == 200
            kept_alive.request("GET", "/ping")
            response = kept_alive.getresponse()
            response.read()
            assert response.status == 503 and response.getheader("Connection") == "close"
        status, _, _ = parse_response(queued.recv(65536))
        assert status in (200, 503)  # accepted before the signal (thread), or drained from the queue (503)
        thread.join(10)
        assert answers["slow"][:2] == (200, {"predictions": [2.0]})
        assert server.process.wait(10) == 0
    finally:
        server.stop()


def test_a_request_longer_than_the_drain_gets_a_json_503_not_a_reset(slow_model):
    server = RunningServer(slow_model, "--drain-seconds", "2", "--threads", "2", workers=1)
    answers = {}
    try:
        thread = threading.Thread(target=lambda: answers.update(slow=post(server.port, slow_body(10))))
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        thread.join(15)
        status, body, _ = answers["slow"]
        assert status == 503 and body["error_code"] == "TEMPORARILY_UNAVAILABLE", body
        assert time.monotonic() - started < 4
    finally:
        server.stop()


# --- 7. deadlines ---------------------------------------------------------------------------------

WORKER_TYPES = {
    "thread": ("--threads", "1"),
    "threads_4": ("--threads", "4"),
    "threads_4_batching": ("--threads", "4", "--batching", "on"),
    "sync": ("--worker-class", "sync"),
}


@pytest.mark.parametrize("worker_type", WORKER_TYPES)
def test_a_request_past_its_deadline_gets_a_json_504_and_the_worker_keeps_serving(slow_model, worker_type):
    server = RunningServer(slow_model, "--request-timeout", "1", *WORKER_TYPES[worker_type], workers=1)
    try:
        for how in ("sleep", "spin"):
            started = time.monotonic()
            status, body, headers = post(server.port, slow_body(4, how))
            took = time.monotonic() - started
            assert status == 504 and body["error_code"] == "DEADLINE_EXCEEDED", body
            assert "request_timeout" in body["message"] and headers["content-type"] == "application/json"
            assert 0.9 < took < 2.5, took
            status, body, _ = post(server.port, slow_body(0.1))
            assert (status, body) == (200, {"predictions": [0.1]})
        assert server.get("/ping").status_code == 200
    finally:
        output = server.stop()
    assert "WORKER TIMEOUT" not in output


def test_hung_predictions_holding_every_thread_get_the_worker_replaced(slow_model):
    server = RunningServer(slow_model, "--request-timeout", "1", "--threads", "2", workers=1)
    try:
        before = worker_pids(server.process.pid)
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(post(server.port, slow_body(60))))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        # Queued behind them: answered all the same (503 when the worker is replaced, or 504).
        status, body, _ = post(server.port, slow_body(0.1), timeout=10)
        for thread in threads:
            thread.join(10)
        assert [a[0] for a in answers] == [504, 504]
        assert (status, body["error_code"]) in ((503, "TEMPORARILY_UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")), body
        deadline = time.monotonic() + 10
        while (worker_pids(server.process.pid) in ([], before)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker_pids(server.process.pid) not in ([], before)  # a fresh worker
        assert post(server.port, slow_body(0.1))[:2] == (200, {"predictions": [0.1]})
    finally:
        output = server.stop()
    assert "stuck in requests past their deadline" in output


@pytest.mark.heavy
def test_one_hung_prediction_of_four_threads_keeps_the_same_worker(slow_model):
    server = RunningServer(slow_model, "--request-timeout", "1", "--threads", "4", workers=1)
    try:
        before = worker_pids(server.process.pid)
        assert post(server.port, slow_body(30))[0] == 504
        for _ in range(5):
            assert post(server.port, slow_body(0.05))[0] == 200
        assert worker_pids(server.process.pid) == before
    finally:
        server.stop()


# --- gunicorn options --------------------------------------------------------------------------------

def test_gunicorn_options_map_the_deadline_drain_and_worker_class():
    config = load_config(env={}, overrides={"model_uri": "m", "request_timeout": 90, "drain_seconds": 7})
    options = gunicorn_options(config)
    assert options["worker_class"] == "scoring_server.workers.thread.ThreadWorker"
    assert options["timeout"] == 95  # the silence timeout stays above the deadline: the 504 goes first
    assert options["graceful_timeout"] == 7
    assert options["control_socket_disable"] is True
    sync = gunicorn_options(load_config(env={}, overrides={"model_uri": "m", "worker_class": "sync"}))
    assert sync["worker_class"] == "scoring_server.workers.sync.SyncWorker" and sync["timeout"] == 65


def test_gunicorn_cmd_args_still_win(monkeypatch):
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--graceful-timeout 3 --timeout 200")
    config = load_config(env={}, overrides={"model_uri": "m"})
    application = ScoringServerApplication(object(), gunicorn_options(config))
    assert application.cfg.graceful_timeout == 3 and application.cfg.timeout == 200
    assert application.cfg.worker_class_str == "scoring_server.workers.thread.ThreadWorker"


def test_sync_workers_refuse_threads():
    from scoring_server.config import ConfigError

    with pytest.raises(ConfigError, match="worker_class: sync workers answer one request at a time"):
        load_config(env={}, overrides={"model_uri": "m", "worker_class": "sync", "threads": 4})
