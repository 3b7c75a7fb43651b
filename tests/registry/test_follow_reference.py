"""A server on models:/NAME/Production follows promotions under load: no failed request, and
every worker answers with the new version within the poll interval plus the load time."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import requests
from sklearn.dummy import DummyClassifier

from flavors.sklearn import save_model
from scoring_server.app import create_app
from scoring_server.config import load_config
from scoring_server.registry import ModelRegistry

from ..conftest import FIXTURES, RunningServer
from .postgres_server import postgres_server, postgres_uri, registry_location  # noqa: F401 - fixtures

BODY = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                            "data": [[5.1, 3.5, 1.4, 0.2]]}}
POLL = 0.5
SWITCH_DEADLINE = POLL + 10  # poll interval plus a generous load time on a busy 2-core machine


def constant_model(path, label: int) -> str:
    features = np.zeros((3, 4))
    save_model(DummyClassifier(strategy="constant", constant=label).fit(features, [0, 1, 2]), path)
    return str(path)


def three_versions(registry: ModelRegistry, tmp_path) -> ModelRegistry:
    registry.register("iris", str(FIXTURES / "iris"))                   # v1 predicts 0
    registry.register("iris", constant_model(tmp_path / "two", 2))     # v2 predicts 2
    registry.register("iris", constant_model(tmp_path / "one", 1))     # v3 predicts 1
    registry.transition("iris", 1, "Production")
    return registry


@pytest.fixture
def registry(tmp_path):
    return three_versions(ModelRegistry(tmp_path / "registry"), tmp_path)


@pytest.fixture
def shared_registry(registry_location, tmp_path) -> tuple[ModelRegistry, list[str]]:
    """Three versions in an embedded or a PostgreSQL registry, and the flags a server needs to follow it."""
    uri, artifact_root = registry_location
    registry = three_versions(ModelRegistry(uri, artifact_root=artifact_root), tmp_path)
    return registry, ["--registry", uri, *(["--artifact-root", artifact_root] if artifact_root else [])]


EXPECTED = {"1": [0], "2": [2], "3": [1]}


class Load:
    """Clients posting continuously until stopped (at most 120 s), recording every answer."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url, self.answers, self.failures = url, [], []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def _client(self) -> None:
        deadline = time.monotonic() + 120
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            try:
                response = requests.post(self.url + "/invocations", json=BODY, timeout=30)
                if response.status_code != 200:
                    self.failures.append((response.status_code, response.text))
                else:
                    self.answers.append((response.headers["X-Model-Version"], response.json()["predictions"]))
            except requests.RequestException as exc:
                self.failures.append(repr(exc))

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)


def versions_answering(url: str, count: int = 30) -> set[str]:
    """Versions named by ``count`` fresh connections (sync workers: spread over every worker)."""
    return {requests.post(url + "/invocations", json=BODY, timeout=30).headers["X-Model-Version"]
            for _ in range(count)}


def wait_for_version(url: str, version: str) -> float:
    """Seconds until 30 fresh connections (enough to reach every worker) all name ``version``."""
    start = time.monotonic()
    while time.monotonic() - start < SWITCH_DEADLINE:
        if versions_answering(url) == {version}:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"still not only version {version} after {SWITCH_DEADLINE}s")


def test_promotions_under_load_switch_every_worker_without_failures(shared_registry):
    registry, registry_flags = shared_registry
    server = RunningServer("models:/iris/Production", *registry_flags, "--poll-interval", str(POLL), workers=2)
    load = Load(server.url)
    try:
        assert versions_answering(server.url) == {"1"}
        for version in (2, 3, 1, 2):
            registry.transition("iris", version, "Production", archive_existing=True)
            wait_for_version(server.url, str(version))
            assert versions_answering(server.url) == {str(version)}
        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    finally:
        load.stop()
        server.stop()
    assert load.failures == []
    assert len(load.answers) > 50
    assert all(EXPECTED[version] == predictions for version, predictions in load.answers)


def test_alias_moves_are_followed_and_a_broken_version_keeps_the_old_one(registry, tmp_path, monkeypatch):
    """In-process, calling the follower's check directly: a version that cannot load is tried once,
    the old version keeps answering, and the next move is followed."""
    import scoring_server.catalog.follower as follower_module

    broken = tmp_path / "broken"
    constant_model(broken, 2)
    (broken / "model.pkl").write_bytes(b"not a pickle")
    registry.register("iris", str(broken))                             # v4 cannot load
    registry.set_alias("iris", "champion", 1)
    app = create_app(load_config(env={}, overrides={"model_uri": "models:/iris@champion",
                                                    "registry_uri": str(registry.root)}))
    follower, client = app.extensions["follower"], app.test_client()
    loads = []
    real_load = follower_module.load_version
    monkeypatch.setattr(follower_module, "load_version",
                        lambda version, *args: loads.append(version.path) or real_load(version, *args))

    def answer() -> tuple[str, list]:
        response = client.post("/invocations", json=BODY)
        return response.headers["X-Model-Version"], response.get_json()["predictions"]

    assert follower.check() == [] and loads == []                      # nothing moved: nothing loaded
    registry.set_alias("iris", "champion", 4)
    assert follower.check() == [] and answer() == ("1", [0])
    assert follower.check() == [] and len(loads) == 1                  # the broken version is not retried
    registry.set_alias("iris", "champion", 3)
    assert follower.check() == ["models:/iris@champion"] and answer() == ("3", [1])
    assert client.post("/invocations", json=BODY).headers["X-Model-Name"] == "iris"


def test_local_models_name_themselves_without_a_version():
    server = RunningServer(FIXTURES / "iris", workers=1)
    try:
        response = requests.post(server.url + "/invocations", json=BODY, timeout=10)
        error = requests.post(server.url + "/invocations", json={"foo": 1}, timeout=10)
    finally:
        server.stop()
    assert response.headers["X-Model-Name"] == "iris" and "X-Model-Version" not in response.headers
    assert error.status_code == 400 and error.headers["X-Model-Name"] == "iris"
