"""An MLflow tracking server as the registry: a real ``mlflow server`` (MLflow 3, its own venv), models
logged and registered with MLflow's own client, served and followed by scoring-server without MLflow."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from scoring_server.cli import main
from scoring_server.registry import ModelRegistry, RegistryError

from ..conftest import RunningServer
from .mlflow_server import MlflowServer

BODY = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                            "data": [[5.1, 3.5, 1.4, 0.2]]}}
POLL = 0.5
SWITCH_DEADLINE = 30  # poll interval, the download from MLflow and the load, on a busy machine

#: Versions 1 and 2 of iris-mlflow, constant classifiers answering 0 and 2, logged to runs and
#: registered by MLflow; version 1 in Production, alias champion on version 2.
REGISTER = """
import numpy as np
from sklearn.dummy import DummyClassifier
for label in (0, 2):
    with mlflow.start_run():
        model = DummyClassifier(strategy="constant", constant=label).fit(np.zeros((3, 4)), [0, 1, 2])
        mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-mlflow")
client.transition_model_version_stage("iris-mlflow", "1", "Production")
client.set_registered_model_alias("iris-mlflow", "champion", "2")
"""


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """The tracking server, with iris-mlflow registered; how long each step took is printed."""
    started = time.monotonic()
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    up = time.monotonic()
    try:
        server.client(REGISTER)
        print(f"mlflow server up in {up - started:.1f} s; two versions logged and registered in "
              f"{time.monotonic() - up:.1f} s")
        yield server
    finally:
        server.stop()


def answer(url: str) -> tuple[str, tuple]:
    response = requests.post(url + "/invocations", json=BODY, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["X-Model-Version"], tuple(response.json()["predictions"])


@pytest.mark.heavy
def test_a_server_follows_a_promotion_made_in_mlflow(mlflow_server, tmp_path):
    server = RunningServer("models:/iris-mlflow/Production", "--registry", mlflow_server.url,
                           "--poll-interval", str(POLL), workers=2, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        assert answer(server.url) == ("1", (0,))
        promoted = time.monotonic()  # an upper bound: the client spends seconds importing MLflow
        mlflow_server.client('client.transition_model_version_stage("iris-mlflow", "2", "Production", '
                             'archive_existing_versions=True)')
        while {answer(server.url) for _ in range(10)} != {("2", (2,))}:
            assert time.monotonic() - promoted < SWITCH_DEADLINE, server.output()
            time.sleep(0.2)
        print(f"every worker on version 2 {time.monotonic() - promoted:.1f} s after the promotion")
    finally:
        output = server.stop()
    assert "Traceback" not in output
    for version in (1, 2):  # downloaded once into the cache, by version and MLflow's creation time
        assert len(list((tmp_path / "cache").glob(f"scoring-server/mlflow/*/models/iris-mlflow/{version}-*/MLmodel"))) == 1


@pytest.mark.heavy
def test_versions_aliases_and_latest_resolve_and_mistakes_are_one_line(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    registry = ModelRegistry(f"mlflow+{mlflow_server.url}/")
    champion = registry.resolve_uri("models:/iris-mlflow@champion")
    assert (champion.version, registry.resolve_uri("models:/iris-mlflow/latest").version) == (2, 2)
    assert registry.resolve_uri("models:/iris-mlflow/1").uuid != champion.uuid
    assert (Path(champion.path) / "MLmodel").is_file()
    assert Path(champion.path).is_relative_to(tmp_path / "cache")
    for uri, message in [("models:/absent/Production", "registered model 'absent' does not exist in the MLflow registry"),
                         ("models:/iris-mlflow/9", "model 'iris-mlflow' has no version 9"),
                         ("models:/iris-mlflow@nobody", "model 'iris-mlflow' has no alias 'nobody'")]:
        with pytest.raises(RegistryError, match=message):
            registry.resolve_uri(uri)

    runner = CliRunner()
    listed = runner.invoke(main, ["registry", "list", "--json", "--registry", mlflow_server.url])
    assert listed.exit_code == 0 and [m["name"] for m in json.loads(listed.output)] == ["iris-mlflow"]
    refused = runner.invoke(main, ["registry", "transition", "iris-mlflow", "1", "Staging",
                                   "--registry", mlflow_server.url])
    assert refused.exit_code == 1
    assert refused.output.strip() == (f"Error: {mlflow_server.url} is an MLflow registry: register and promote "
                                      "versions with MLflow")


def test_an_http_registry_is_never_a_local_folder(tmp_path, monkeypatch):
    """The tracking server is asked (and here, unreachable: a one-line error); no ./http: folder appears."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RegistryError, match=r"^cannot reach the MLflow tracking server http://127.0.0.1:9: ") as error:
        ModelRegistry("http://user:secret@127.0.0.1:9").list_models()
    assert "secret" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
