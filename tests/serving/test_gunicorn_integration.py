"""gunicorn integration: GUNICORN_CMD_ARGS, the WSGI entry for operators, and model-once loading."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

from ..conftest import FIXTURES, REPO, RunningServer, free_port

RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


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


def test_gunicorn_cmd_args_override_the_worker_count():
    server = RunningServer(FIXTURES / "iris", workers=1, env={"GUNICORN_CMD_ARGS": "--workers 3"})
    try:
        deadline = time.monotonic() + 20
        while len(worker_pids(server.process.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(worker_pids(server.process.pid)) == 3
    finally:
        server.stop()


def test_model_is_loaded_once_in_the_master():
    server = RunningServer(FIXTURES / "iris", workers=2, env={"SCORING_SERVER_LOG_LEVEL": "debug"})
    output = server.stop()
    assert output.count("Loaded model") == 1, output


def test_launch_script_serves_the_wsgi_entry():
    port = free_port()
    env = {**os.environ, "SCORING_SERVER_PORT": str(port), "SCORING_SERVER_WORKERS": "2"}
    gunicorn_bin = Path(os.sys.executable).parent
    env["PATH"] = f"{gunicorn_bin}:{env['PATH']}"
    process = subprocess.Popen(["bash", "scripts/serve.sh", str(FIXTURES / "iris")], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        response = requests.post(url + "/invocations", json={"dataframe_records": [RECORD]}, timeout=10)
        assert response.json() == {"predictions": [0]}
    finally:
        process.terminate()
        process.communicate(timeout=20)
