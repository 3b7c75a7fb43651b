"""Many models behind one server: 50 models, 2 workers, at most 10 loaded per worker."""
from __future__ import annotations

import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from sklearn.dummy import DummyRegressor

from flavors.sklearn import save_model
from scoring_server.registry import ModelRegistry

from ..conftest import FIXTURES, RunningServer, REPO
from .test_gunicorn_integration import worker_pids

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
COUNT = 50


def constant_model(path: Path, value: float) -> Path:
    save_model(DummyRegressor(strategy="constant", constant=value).fit(np.zeros((2, 2)), [0, 0]), path)
    return path


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for i in range(COUNT):
        constant_model(root / f"m{i}", float(i))
    broken = constant_model(root / "broken", 99.0)
    (broken / "model.pkl").write_bytes(b"not a pickle")
    return root


@pytest.fixture(scope="module")
def fleet(model_root):
    server = RunningServer(None, "--model-root", str(model_root), "--max-loaded-models", "10",
                           "--default-model", "m0", workers=2)
    yield server
    server.stop()


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def loaded_counts(server: RunningServer, samples: int = 20) -> list[int]:
    """Loaded-model counts reported by whichever worker answers (fresh connections reach both)."""
    return [sum(m["loaded"] for m in requests.get(server.url + "/models", timeout=10).json()["models"])
            for _ in range(samples)]


def sweep(server: RunningServer, rng: random.Random) -> list[tuple[int, object]]:
    order = rng.sample(range(COUNT), COUNT)
    def ask(i):
        response = requests.post(f"{server.url}/models/m{i}/invocations", json=ROW, timeout=60)
        return i, response.json()
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(ask, order))


def test_every_model_answers_in_random_order_within_the_load_limit_and_flat_memory(fleet):
    rng = random.Random(3)
    rss = []
    for _ in range(4):
        answers = sweep(fleet, rng)
        assert all(body == {"predictions": [float(i)]} for i, body in answers), answers
        assert max(loaded_counts(fleet)) <= 10
        rss.append(sum(rss_mib(pid) for pid in worker_pids(fleet.process.pid)))
    assert rss[-1] - rss[1] < 30, f"worker memory grew over sweeps: {rss}"


def test_a_broken_model_answers_503_and_affects_only_itself(fleet):
    broken = requests.post(fleet.url + "/models/broken/invocations", json=ROW, timeout=30)
    assert broken.status_code == 503 and broken.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert requests.post(fleet.url + "/models/m7/invocations", json=ROW, timeout=30).json() == {"predictions": [7.0]}
    assert requests.get(fleet.url + "/ping", timeout=5).status_code == 200


def test_invocations_routes_by_header_param_or_default(fleet):
    by_header = requests.post(fleet.url + "/invocations", json=ROW, headers={"X-Model-Name": "m3"}, timeout=30)
    by_param = requests.post(fleet.url + "/invocations", json=dict(ROW, params={"model": "m4"}), timeout=30)
    default = requests.post(fleet.url + "/invocations", json=ROW, timeout=30)
    assert by_header.json() == {"predictions": [3.0]} and by_header.headers["X-Model-Name"] == "m3"
    assert by_param.json() == {"predictions": [4.0]}
    assert default.json() == {"predictions": [0.0]}


def test_unknown_models_are_404(fleet):
    response = requests.post(fleet.url + "/models/nope/invocations", json=ROW, timeout=30)
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_model_listing_and_description(fleet):
    listing = requests.get(fleet.url + "/models", timeout=10).json()["models"]
    assert len(listing) == COUNT + 1 and {"name", "uri", "version", "loaded", "last_used"} <= set(listing[0])
    described = requests.get(fleet.url + "/models/m5", timeout=30).json()
    assert described["name"] == "m5" and described["flavor"] == "sklearn" and described["loaded"]


def test_admin_api_is_off_by_default(fleet):
    assert requests.post(fleet.url + "/models", json={"name": "x", "uri": "y"}, timeout=10).status_code == 404
    assert requests.delete(fleet.url + "/models/m1", timeout=10).status_code == 404


def test_admin_api_adds_and_removes_models_in_every_worker(tmp_path, model_root):
    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({"models": {"first": str(model_root / "m1")}}))
    server = RunningServer(None, "--models", str(models_file), "--admin-api", workers=2)
    try:
        added = requests.post(server.url + "/models", json={"name": "extra", "uri": str(model_root / "m9")}, timeout=10)
        assert added.status_code == 201
        answers = {str(requests.post(server.url + "/models/extra/invocations", json=ROW, timeout=30).json())
                   for _ in range(12)}
        assert answers == {str({"predictions": [9.0]})}
        assert requests.delete(server.url + "/models/extra", timeout=10).status_code == 200
        gone = {requests.post(server.url + "/models/extra/invocations", json=ROW, timeout=30).status_code
                for _ in range(12)}
        assert gone == {404}
    finally:
        server.stop()


def test_models_file_sets_a_protocol_per_model(tmp_path, model_root):
    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({
        "old": {"uri": str(model_root / "m2"), "protocol": "mlflow1"},
        "new": str(model_root / "m3"),
    }))
    server = RunningServer(None, "--models", str(models_file), workers=1)
    try:
        old = requests.post(server.url + "/models/old/invocations", json=ROW["dataframe_split"], timeout=30)
        new = requests.post(server.url + "/models/new/invocations", json=ROW, timeout=30)
    finally:
        server.stop()
    assert old.json() == [2.0]
    assert new.json() == {"predictions": [3.0]}


def test_registry_models_follow_production(tmp_path, model_root):
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("alpha", str(model_root / "m1"))
    registry.register("alpha", str(model_root / "m2"))
    registry.register("beta", str(model_root / "m5"))
    registry.transition("alpha", 2, "Production")
    registry.transition("beta", 1, "Production")
    server = RunningServer(None, "--registry-models", "--registry", str(registry.root), "--poll-interval", "0.3",
                           workers=2)
    try:
        alpha = requests.post(server.url + "/models/alpha/invocations", json=ROW, timeout=30)
        beta = requests.post(server.url + "/models/beta/invocations", json=ROW, timeout=30)
        assert alpha.json() == {"predictions": [2.0]} and alpha.headers["X-Model-Version"] == "2"
        assert beta.json() == {"predictions": [5.0]}
        for _ in range(6):  # make sure both workers have alpha loaded
            requests.post(server.url + "/models/alpha/invocations", json=ROW, timeout=30)
        registry.transition("alpha", 1, "Production", archive_existing=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            answers = {str(requests.post(server.url + "/models/alpha/invocations", json=ROW, timeout=30).json())
                       for _ in range(8)}
            if answers == {str({"predictions": [1.0]})}:
                break
            time.sleep(0.2)
        assert answers == {str({"predictions": [1.0]})}
    finally:
        server.stop()


def test_concurrent_first_requests_load_a_model_once(model_root):
    server = RunningServer(None, "--model-root", str(model_root), workers=1)
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(
                lambda _: requests.post(server.url + "/models/m11/invocations", json=ROW, timeout=60).json(), range(16)))
    finally:
        log = server.stop()
    assert answers == [{"predictions": [11.0]}] * 16
    assert log.count("Loaded model m11 ") == 1


def test_one_model_and_many_at_once_is_refused(model_root):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "scoring_server", "serve", "-m", str(FIXTURES / "iris"),
                             "--model-root", str(model_root), "-p", "0"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "not both" in result.stderr
