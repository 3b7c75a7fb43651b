"""Shared test fixtures: the MLflow-written model directories, the scoring app answering in-process,
and real gunicorn servers.

Two ways to talk to a model, with the same interface (``post``, ``get``, ``head``, ``delete``):

* :class:`InProcessServer` builds the app ``scoring-server serve`` would run and answers through
  Flask's test client: no process, no port, no start-up. For everything where the process model
  does not matter (protocols, schemas, error codes and bodies, content types, routing).
* :class:`RunningServer` is a real ``scoring-server serve`` (a gunicorn master and its workers on a
  loopback port), forked from a process that has already imported the serving modules; a
  :class:`CommandServer` is started by a command in a new interpreter (the launch script). For
  what only a real server shows: workers and forks, signals, ``GUNICORN_CMD_ARGS``, registry
  references followed in every worker, threads under real concurrency, raw HTTP (Content-Length
  and 413).
"""
from __future__ import annotations

import atexit
import json as jsonlib
import multiprocessing
import multiprocessing.forkserver
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

FIXTURES = Path(__file__).parent / "fixtures" / "mlflow-models"
REPO = Path(__file__).parent.parent
#: Real MLflow 3.17.2 in its own virtualenv with the flavors' frameworks (scripts/test.sh makes it; never our
#: dependency): the heavy tests have it load the models our save_model writes.
MLFLOW_PYTHON = REPO / ".bench" / "mlflow" / "bin" / "python"


def mlflow_python() -> str:
    """MLflow's interpreter, or a test failure saying how to make it."""
    if not MLFLOW_PYTHON.exists():
        pytest.fail(f"{MLFLOW_PYTHON} is missing: scripts/test.sh creates MLflow's virtualenv (mlflow==3.17.2 "
                    "with scikit-learn, skops, onnxruntime, xgboost, lightgbm, torch 2.13.0 CPU and keras)")
    return str(MLFLOW_PYTHON)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_body(body: bytes | str | Any) -> bytes | str:
    """What the tests send: bytes and text as they are, anything else as JSON."""
    return body if isinstance(body, (bytes, str)) else jsonlib.dumps(body)


def request_headers(content_type: str | None, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the Content-Type, unless it is None (then no Content-Type header is sent)."""
    return {**headers, "Content-Type": content_type} if content_type is not None else headers


def constant_model(path: Path, value: float, ballast_bytes: int = 0) -> Path:
    """A scikit-learn model of two columns ``a``, ``b`` that always predicts ``value``, saved at
    ``path``; ``ballast_bytes`` of weights make a copy of it visible in a process's memory."""
    import numpy as np
    from sklearn.dummy import DummyRegressor

    from flavors.sklearn import save_model

    model = DummyRegressor(strategy="constant", constant=value).fit(np.zeros((2, 2)), [0, 0])
    if ballast_bytes:
        model.ballast_ = np.random.default_rng(int(value)).random(ballast_bytes // 8)
    save_model(model, path)
    return path


def constant_models(root: Path, count: int, ballast_bytes: int = 0) -> Path:
    """``count`` constant models ``m0``… under ``root``, ``m{i}`` predicting ``i``."""
    for i in range(count):
        constant_model(root / f"m{i}", float(i), ballast_bytes)
    return root


def results_of_processes(target, args: tuple, count: int) -> list:
    """Run ``target(*args, queue)`` in ``count`` new (spawned) processes at once; what each put on
    the queue. Every process must exit cleanly within two minutes."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=target, args=(*args, queue)) for _ in range(count)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert all(process.exitcode == 0 for process in processes)
    return [queue.get(timeout=5) for _ in processes]


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn master's child processes, read from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            children.append(int(stat.parent.name))
    return children


def assert_error(response, status: int, error_code: str, *fragments: str) -> dict:
    """``response`` is the JSON error ``status``/``error_code`` whose message holds every fragment,
    without a stack trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == error_code
    for fragment in fragments:
        assert fragment in body["message"]
    assert "stack_trace" not in body
    return body


def clean_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the developer's scoring-server and gunicorn settings,
    plus ``env``: a server under test is configured by its test only."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("SCORING_SERVER_") and key != "GUNICORN_CMD_ARGS"}
    return {**inherited, **(env or {})}


class ServerProcess:
    """A server process answering HTTP on loopback ``port``, with a clean environment plus ``env``;
    :class:`CommandServer` and :class:`RunningServer` start it. Returns once the server is ready."""

    def __init__(self, port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # A file, not a pipe: a chatty server must never block on a full pipe nobody reads.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="server-", suffix=".log")
        self.process = self._start(clean_environment(env))
        self._wait_ready()

    def _start(self, env: dict[str, str]) -> subprocess.Popen | ForkedCli:
        raise NotImplementedError

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the server answers /ping 200 (the model is loaded and a worker is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            if answers_ping(self.url):
                return
            time.sleep(0.02)
        raise RuntimeError(f"server did not answer /ping in time:\n{self.stop()}")

    def post(self, body: bytes | str | Any, content_type: str | None = "application/json",
             path: str = "/invocations", **headers: str) -> requests.Response:
        return requests.post(f"{self.url}{path}", data=request_body(body),
                             headers=request_headers(content_type, headers), timeout=60)

    def get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30)

    def head(self, path: str, **headers: str) -> requests.Response:
        return requests.head(f"{self.url}{path}", headers=headers, timeout=30)

    def delete(self, path: str, **headers: str) -> requests.Response:
        return requests.delete(f"{self.url}{path}", headers=headers, timeout=30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        """Stop the server as an operator would (SIGTERM: gunicorn's graceful shutdown) and return
        everything it printed."""
        stop_process(self.process)
        return self.output()


def answers_ping(url: str, timeout: float = 1) -> bool:
    """Whether the server at ``url`` answers ``/ping`` with 200 now (ready)."""
    try:
        return requests.get(f"{url}/ping", timeout=timeout).status_code == 200
    except requests.ConnectionError:
        return False


def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as it is; the status, headers (lower-cased) and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def stop_process(process: Any) -> None:
    """SIGTERM ``process`` (a ``subprocess.Popen`` or :class:`ForkedCli`) and wait; SIGKILL it if it
    is still running after 20 s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class CommandServer(ServerProcess):
    """A server started by a command, in a new interpreter (such as the launch script)."""

    def __init__(self, cmd: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        super().__init__(port, env)

    def _start(self, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(self.cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)


class RunningServer(ServerProcess):
    """`scoring-server serve` on a free loopback port: a real gunicorn master and its workers, the
    master started as a :class:`ForkedCli`."""

    def __init__(self, model_dir: Path | str | None, *extra: str, workers: int = 2, env: dict | None = None) -> None:
        """``model_dir`` None serves no single model (for --models, --model-root, --registry-models)."""
        self.model_dir = model_dir
        port = free_port()
        model_args = ["-m", str(model_dir)] if model_dir is not None else []
        self.args = ["serve", *model_args, "-h", "127.0.0.1", "-p", str(port), "-w", str(workers), *extra]
        super().__init__(port, env)

    def _start(self, env: dict[str, str]) -> ForkedCli:
        return ForkedCli(self.args, env, self.log.name)


#: Modules every server imports before it reads its arguments. A missing one only costs time.
SERVER_IMPORTS = ["scoring_server.cli", "scoring_server.app", "scoring_server.server", "flavors.sklearn",
                  "flavors.python_function", "sklearn.linear_model", "sklearn.utils._testing",
                  "gunicorn.arbiter", "gunicorn.workers.sync", "gunicorn.workers.gthread"]


def forkserver() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context whose forkserver imports SERVER_IMPORTS (and this module) first."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, *SERVER_IMPORTS])
    return context


def pytest_collection_finish(session: pytest.Session) -> None:
    """When a selected test's module starts real servers, start their forkserver now: it imports
    SERVER_IMPORTS on another core while the first tests run."""
    if any(getattr(getattr(item, "module", None), "RunningServer", None) is RunningServer for item in session.items):
        forkserver()
        multiprocessing.forkserver.ensure_running()


class ForkedCli:
    """``python -m scoring_server ARGS`` without starting an interpreter: a child of a multiprocessing
    forkserver that has imported SERVER_IMPORTS once (a new interpreter spends about a second on
    them). The child sets its own arguments, environment, working directory and output before it
    runs the CLI, so it reads everything a server reads at start-up afresh. It has the part of
    ``subprocess.Popen`` the tests use."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: str) -> None:
        self._process = forkserver().Process(target=_run_cli, args=(args, env, log_path), daemon=True)
        self._process.start()
        self.pid = self._process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"forked scoring-server {self.pid}", timeout)
        return self._process.exitcode

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


def _run_cli(args: list[str], env: dict[str, str], log_path: str) -> None:
    """In a :class:`ForkedCli`: what ``python -m scoring_server ARGS`` does, with ``env``, from REPO,
    printing to ``log_path``; its processes (the master, and the workers it forks) run the atexit
    handlers when they exit, as an interpreter does."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout.reconfigure(line_buffering=True)
    os.chdir(REPO)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # found again from the environment (TMPDIR) when first needed
    sys.argv = [str(REPO / "scoring_server" / "__main__.py"), *args]
    from scoring_server.cli import main

    try:
        main(args)
    finally:
        atexit._run_exitfuncs()


class InProcessResponse:
    """A Flask test response seen through the part of ``requests.Response`` the tests read."""

    def __init__(self, response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self):
        return self._response.headers

    @property
    def content(self) -> bytes:
        return self._response.get_data()

    @property
    def text(self) -> str:
        return self._response.get_data(as_text=True)

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class InProcessServer:
    """The app `scoring-server serve` would run, built from ``overrides`` of the configuration
    (the developer's ``SCORING_SERVER_*`` environment is ignored), answering through Flask's test
    client. Safe to use from several threads at once: every request gets its own client."""

    def __init__(self, model_dir: Path | str | None, **overrides: Any) -> None:
        """``model_dir`` None serves no single model (give models_file, model_root or registry_models)."""
        from scoring_server.app import create_app
        from scoring_server.config import load_config

        self.model_dir = model_dir
        model_uri = str(model_dir) if model_dir is not None else None
        self.app = create_app(load_config(env={}, overrides={"model_uri": model_uri, **overrides}))

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> InProcessResponse:
        if isinstance(body, str):
            body = body.encode()
        return InProcessResponse(self.app.test_client().open(path, method=method, data=body, headers=headers or {}))

    def post(self, body: bytes | str | Any, content_type: str | None = "application/json",
             path: str = "/invocations", **headers: str) -> InProcessResponse:
        return self.request("POST", path, request_body(body), request_headers(content_type, headers))

    def get(self, path: str, **headers: str) -> InProcessResponse:
        return self.request("GET", path, headers=headers)

    def head(self, path: str, **headers: str) -> InProcessResponse:
        return self.request("HEAD", path, headers=headers)

    def delete(self, path: str, **headers: str) -> InProcessResponse:
        return self.request("DELETE", path, headers=headers)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def iris_server():
    """The iris model on a real gunicorn server (2 workers)."""
    server = RunningServer(FIXTURES / "iris")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def iris_app() -> InProcessServer:
    return InProcessServer(FIXTURES / "iris")


@pytest.fixture(scope="session")
def iris_nosig_app() -> InProcessServer:
    return InProcessServer(FIXTURES / "iris_nosig")


@pytest.fixture(scope="session")
def day_models_app() -> InProcessServer:
    return InProcessServer(FIXTURES / "day_models")
