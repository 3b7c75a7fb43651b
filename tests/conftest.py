"""Shared test fixtures: the MLflow-written model directories and real gunicorn servers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

FIXTURES = Path(__file__).parent / "fixtures" / "mlflow-models"
REPO = Path(__file__).parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """A `scoring-server serve` process on a free loopback port."""

    def __init__(self, model_dir: Path | str | None, *extra: str, workers: int = 2, env: dict | None = None) -> None:
        """``model_dir`` None serves no single model (for --models, --model-root, --registry-models)."""
        self.model_dir = model_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        model_args = ["-m", str(model_dir)] if model_dir is not None else []
        cmd = [sys.executable, "-m", "scoring_server", "serve", *model_args,
               "-h", "127.0.0.1", "-p", str(self.port), "-w", str(workers), *extra]
        # A file, not a pipe: a chatty server must never block on a full pipe nobody reads.
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not answer /ping in time")

    def post(self, body: bytes | str | dict, content_type: str | None = "application/json",
             path: str = "/invocations", **headers: str) -> requests.Response:
        if not isinstance(body, (bytes, str)):
            import json
            body = json.dumps(body)
        if content_type is not None:
            headers["Content-Type"] = content_type
        return requests.post(f"{self.url}{path}", data=body, headers=headers, timeout=30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        """Stop the server and return everything it printed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.output()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _server(model_dir: Path, *extra: str):
    server = RunningServer(model_dir, *extra)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def iris_server():
    yield from _server(FIXTURES / "iris")


@pytest.fixture(scope="session")
def iris_nosig_server():
    yield from _server(FIXTURES / "iris_nosig")


@pytest.fixture(scope="session")
def day_models_server():
    yield from _server(FIXTURES / "day_models")
