"""Start-up of a real server: the port is bound before the model loads, answers 503 while it loads,
and the logs say what is being loaded and what was."""
from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import pytest
import requests

from flavors import PythonModel
from flavors.python_function import save_model

from ..conftest import FIXTURES, ForkedCli, RunningServer, clean_environment, free_port, stop_process

IRIS = FIXTURES / "iris"
IRIS_ROW = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                "data": [[5.1, 3.5, 1.4, 0.2]]}}


class GatedLoad(PythonModel):
    """Loads only once the file named by its model config exists: the test decides when loading ends."""

    def load_context(self, context):
        gate = Path(context.model_config["gate"])
        deadline = time.monotonic() + 60
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def predict(self, context, model_input, params=None):
        return model_input


def _until(condition, timeout: float = 30.0):
    """Poll ``condition`` until it returns a true value (returned), within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except requests.ConnectionError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_ping_answers_503_while_the_model_loads_then_200_on_the_same_port(tmp_path):
    gate = tmp_path / "gate"
    save_model(tmp_path / "model", python_model=GatedLoad(), model_config={"gate": str(gate)})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", prefix="server-", suffix=".log")
    process = ForkedCli(["serve", "-m", str(tmp_path / "model"), "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                        clean_environment(), log.name)
    try:
        [loading] = _until(lambda: [requests.get(f"{url}/ping", timeout=2)])  # a 503 response is falsy
        assert loading.status_code == 503 and loading.headers["Retry-After"] == "1"
        scored = requests.post(f"{url}/invocations", json=IRIS_ROW, timeout=2)
        assert scored.status_code == 503 and scored.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        alive = requests.get(f"{url}/health", timeout=2)  # liveness: loading is alive, not ready
        assert (alive.status_code, alive.text) == (200, "\n")
        gate.touch()
        _until(lambda: requests.get(f"{url}/ping", timeout=2).status_code == 200)
        assert requests.post(f"{url}/invocations", json=IRIS_ROW, timeout=5).status_code == 200
    finally:
        gate.touch()
        stop_process(process)
    output = Path(log.name).read_text()
    loading_line = output.index(f"Loading model {tmp_path / 'model'}")
    assert loading_line < output.index("Loaded model model (flavor python_function) from ") < output.index(
        "Booting worker"), output


def test_a_port_in_use_is_said_in_one_line_before_the_model_loads():
    from click.testing import CliRunner

    from scoring_server.cli import main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = CliRunner().invoke(main, ["serve", "-m", str(IRIS), "-h", "127.0.0.1", "-p", str(port)],
                                    env={"SCORING_SERVER_CONFIG": None})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert time.monotonic() - started < 5  # no retries


def test_start_up_log_names_the_registry_version_it_loaded(tmp_path):
    from scoring_server.registry import ModelRegistry

    root = tmp_path / "registry"
    ModelRegistry(root).register("iris", str(IRIS))
    server = RunningServer("models:/iris/1", "--registry", str(root), workers=1)
    output = server.stop()
    assert output.index("Loading model models:/iris/1") < output.index(
        f"Loaded model iris version 1 (flavor sklearn) from {root}"), output


@pytest.mark.parametrize(("count", "wording"), [(1, "Serving 1 model on demand"), (2, "Serving 2 models on demand")])
def test_serving_count_reads_right(tmp_path, caplog, count, wording):
    from scoring_server.app import create_app
    from scoring_server.config import load_config

    models = "".join(f"  m{index}: {{uri: {IRIS}}}\n" for index in range(count))
    (tmp_path / "models.yaml").write_text(f"models:\n{models}")
    caplog.set_level("INFO", logger="scoring_server")
    create_app(load_config(overrides={"models_file": str(tmp_path / "models.yaml")}))
    assert wording in caplog.text
