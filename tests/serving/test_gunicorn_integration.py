"""gunicorn integration: GUNICORN_CMD_ARGS, the WSGI entry for operators, and model-once loading."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from ..conftest import FIXTURES, CommandServer, RunningServer, free_port, worker_pids

RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def test_gunicorn_cmd_args_override_the_worker_count():
    server = RunningServer(FIXTURES / "iris", workers=1, env={"GUNICORN_CMD_ARGS": "--workers 3"})
    try:
        deadline = time.monotonic() + 20
        while len(worker_pids(server.process.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(worker_pids(server.process.pid)) == 3
    finally:
        server.stop()


def test_model_is_loaded_once_in_the_master():
    server = RunningServer(FIXTURES / "iris", workers=2, env={"SCORING_SERVER_LOG_LEVEL": "debug"})
    output = server.stop()
    assert output.count("Loaded model") == 1, output


def test_launch_script_serves_the_wsgi_entry():
    port = free_port()
    env = {"SCORING_SERVER_PORT": str(port), "SCORING_SERVER_WORKERS": "2",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # the venv's gunicorn
    server = CommandServer(["bash", "scripts/serve.sh", str(FIXTURES / "iris")], port, env)
    try:
        assert server.post({"dataframe_records": [RECORD]}).json() == {"predictions": [0]}
        # conf/gunicorn.conf.py runs the same worker class as `serve`: gunicorn's errors are JSON.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 414") and b"Content-Type: application/json" in head, raw[:300]
        assert json.loads(body)["error_code"] == "BAD_REQUEST"
    finally:
        server.stop()
