"""A real MLflow tracking server for the tests, and MLflow's own client to fill its registry.

MLflow 3 lives in its own virtual environment (``.bench/mlflow``, made by scripts/test.sh), never
in scoring-server's. The server keeps its registry in SQLite and proxies artifacts
(``--artifacts-destination``: the ``mlflow-artifacts:`` store) in a temporary directory, on a
free loopback port; :meth:`MlflowServer.stop` stops it and everything it started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import requests

from ..conftest import REPO, free_port

MLFLOW_VENV = REPO / ".bench" / "mlflow"
INSTALL = ("python3 -m venv .bench/mlflow && .bench/mlflow/bin/python -m pip install mlflow==3.17.2 "
           "scikit-learn==1.9.1 skops==0.16.0 cloudpickle==3.1.2 (scripts/test.sh does this)")


def mlflow_python() -> Path:
    """The MLflow venv's interpreter; the test fails, saying how to make it, when it is missing."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").is_file():
        pytest.fail(f"MLflow is not installed in {MLFLOW_VENV}: {INSTALL}")
    return python


class MlflowServer:
    """``mlflow server`` on 127.0.0.1, its stores in ``root``; returns once it answers /health."""

    def __init__(self, root: Path, timeout: float = 120.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="mlflow-server-", suffix=".log")
        mlflow = str(mlflow_python().parent / "mlflow")
        self.process = subprocess.Popen(
            [mlflow, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
            cwd=root, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still starting
                pass
            time.sleep(0.2)
        pytest.fail(f"mlflow server did not answer /health within {timeout} s:\n{self.output()}")

    def client(self, code: str) -> str:
        """Run ``code`` with MLflow's client (``mlflow``, ``client``: an MlflowClient) against this server."""
        script = "import mlflow, warnings\nwarnings.filterwarnings('ignore')\n" \
                 f"mlflow.set_tracking_uri({self.url!r})\nclient = mlflow.MlflowClient()\n" + textwrap.dedent(code)
        done = subprocess.run([str(mlflow_python()), "-c", script], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "MLFLOW_TRACKING_URI": self.url})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        """SIGTERM the server's process group (its workers too); SIGKILL it after 20 s."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:  # the group is gone already
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
