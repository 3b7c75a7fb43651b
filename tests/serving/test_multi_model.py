"""Many models behind one server: 50 models, 2 workers, at most 10 loaded per worker.

Routing, listing and error answers are checked in-process; load limits and memory per worker,
admin changes and registry promotions seen by every worker on real gunicorn servers."""
from __future__ import annotations

import logging
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from scoring_server.cli import main
from scoring_server.registry import ModelRegistry

from ..conftest import FIXTURES, InProcessServer, RunningServer, constant_model, constant_models, worker_pids

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
COUNT = 50


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    root = constant_models(tmp_path_factory.mktemp("models"), COUNT)
    broken = constant_model(root / "broken", 99.0)
    (broken / "model.pkl").write_bytes(b"not a pickle")
    return root


@pytest.fixture(scope="module")
def fleet(model_root):
    server = RunningServer(None, "--model-root", str(model_root), "--max-loaded-models", "10",
                           "--default-model", "m0", workers=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fleet_app(model_root):
    """The fleet's configuration, in-process."""
    return InProcessServer(None, model_root=str(model_root), max_loaded_models=10, default_model="m0")


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


def test_a_broken_model_answers_503_and_affects_only_itself(fleet_app):
    broken = fleet_app.post(ROW, path="/models/broken/invocations")
    assert broken.status_code == 503 and broken.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert fleet_app.post(ROW, path="/models/m7/invocations").json() == {"predictions": [7.0]}
    assert fleet_app.get("/ping").status_code == 200


def test_invocations_routes_by_header_param_or_default(fleet_app):
    by_header = fleet_app.post(ROW, **{"X-Model-Name": "m3"})
    by_param = fleet_app.post(dict(ROW, params={"model": "m4"}))
    default = fleet_app.post(ROW)
    assert by_header.json() == {"predictions": [3.0]} and by_header.headers["X-Model-Name"] == "m3"
    assert by_param.json() == {"predictions": [4.0]}
    assert default.json() == {"predictions": [0.0]}


def test_unknown_models_are_404(fleet_app):
    response = fleet_app.post(ROW, path="/models/nope/invocations")
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_model_listing_and_description(fleet_app):
    listing = fleet_app.get("/models").json()["models"]
    assert len(listing) == COUNT + 1 and {"name", "uri", "version", "loaded", "last_used"} <= set(listing[0])
    described = fleet_app.get("/models/m5").json()
    assert described["name"] == "m5" and described["flavor"] == "sklearn" and described["loaded"]


def test_admin_api_is_off_by_default(fleet_app):
    assert fleet_app.post({"name": "x", "uri": "y"}, path="/models").status_code == 404
    assert fleet_app.delete("/models/m1").status_code == 404


def test_admin_api_adds_and_removes_models_in_every_worker(tmp_path, model_root):
    """With API keys and --allowed-model-roots, as the admin API needs (tests/security/test_admin_api.py)."""
    from scoring_server.security.keys import create_key

    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({"models": {"first": str(model_root / "m1")}}))
    key, _ = create_key(tmp_path / "keys.json", "operator", ["admin", "score"])
    auth = {"Authorization": f"Bearer {key}"}
    server = RunningServer(None, "--models", str(models_file), "--admin-api", "--api-keys", str(tmp_path / "keys.json"),
                           "--allowed-model-roots", str(model_root), workers=2)
    try:
        outside = requests.post(server.url + "/models", json={"name": "extra", "uri": str(FIXTURES / "iris")},
                                headers=auth, timeout=10)
        assert outside.status_code == 403
        added = requests.post(server.url + "/models", json={"name": "extra", "uri": str(model_root / "m9")},
                              headers=auth, timeout=10)
        assert added.status_code == 201
        answers = {str(requests.post(server.url + "/models/extra/invocations", json=ROW, headers=auth, timeout=30).json())
                   for _ in range(12)}
        assert answers == {str({"predictions": [9.0]})}
        assert requests.delete(server.url + "/models/extra", headers=auth, timeout=10).status_code == 200
        gone = {requests.post(server.url + "/models/extra/invocations", json=ROW, headers=auth, timeout=30).status_code
                for _ in range(12)}
        assert gone == {404}
    finally:
        server.stop()


def test_admin_api_refuses_to_start_without_allowed_model_roots(tmp_path, model_root):
    from scoring_server.security.keys import create_key

    create_key(tmp_path / "keys.json", "operator", ["admin"])
    result = CliRunner().invoke(main, ["serve", "--model-root", str(model_root), "--admin-api",
                                       "--api-keys", str(tmp_path / "keys.json"), "-p", "0"])
    assert result.exit_code == 1 and "--allowed-model-roots DIR" in result.stderr


def test_models_file_sets_a_protocol_per_model(tmp_path, model_root):
    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({
        "old": {"uri": str(model_root / "m2"), "protocol": "mlflow1"},
        "new": str(model_root / "m3"),
    }))
    server = InProcessServer(None, models_file=str(models_file))
    old = server.post(ROW["dataframe_split"], path="/models/old/invocations")
    new = server.post(ROW, path="/models/new/invocations")
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


def test_concurrent_first_requests_load_a_model_once(model_root, caplog):
    """In-process, 16 threads really score at once (a sync gunicorn worker would take them in turn)."""
    server = InProcessServer(None, model_root=str(model_root))
    with caplog.at_level(logging.INFO, logger="scoring_server"), ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: server.post(ROW, path="/models/m11/invocations").json(), range(16)))
    assert answers == [{"predictions": [11.0]}] * 16
    assert caplog.text.count("Loaded model m11 ") == 1


def test_one_model_and_many_at_once_is_refused(model_root):
    result = CliRunner().invoke(main, ["serve", "-m", str(FIXTURES / "iris"), "--model-root", str(model_root),
                                       "-p", "0"])
    assert result.exit_code == 1 and "not both" in result.stderr
