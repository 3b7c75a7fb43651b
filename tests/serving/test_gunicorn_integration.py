"""gunicorn integration: GUNICORN_CMD_ARGS, the WSGI entry for operators, and model-once loading."""
from __future__ import annotations

import os
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
    finally:
        server.stop()
