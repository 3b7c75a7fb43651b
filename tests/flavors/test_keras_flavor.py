"""Keras 3 models (flavors/keras.py): MLflow-written fixtures (scripts/flavor_fixtures/keras.py) serve as
MLflow serves them and as Keras computes; capabilities are proven; our save loads in MLflow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flavors import LoadingPolicy, load_model
from flavors.errors import ModelLoadError
from flavors.keras import save_model
from tests.conftest import FIXTURES, InProcessServer, RunningServer, assert_error, mlflow_python

pytestmark = pytest.mark.heavy

NAMES = ["keras_regressor", "keras_classifier"]
COLUMNS = ["x1", "x2", "x3", "x4"]


@pytest.fixture(scope="module")
def keras():
    """Keras on the fixtures' backend, imported when a test needs it (not when the default suite collects)."""
    os.environ["KERAS_BACKEND"] = "torch"  # Keras reads it once, at its first import
    try:
        import keras
    except ImportError as exc:  # fail, never skip: these tests are the flavor's proof
        pytest.fail(f"the Keras tests need keras 3 and torch (CPU build): pip install -e '.[keras]' ({exc})")
    return keras


def expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "expected.json").read_text())


def request_input(request: dict):
    """The fixture's request as the model gets it: a DataFrame, or the float32 tensor of its signature."""
    if "dataframe_split" in request:
        return pd.DataFrame(**request["dataframe_split"])
    return np.asarray(request["inputs"], dtype=np.float32)


def keras_answer(keras, model_dir: Path, request: dict) -> list:
    """Keras' own ``model.predict`` for the request, shaped as the server answers it."""
    model = keras.saving.load_model(model_dir / "data" / "model.keras")
    data = request_input(request)
    output = model.predict(data.values if isinstance(data, pd.DataFrame) else data, verbose=0)
    return [{"0": float(v)} for v in output[:, 0]] if isinstance(data, pd.DataFrame) else output.tolist()


def assert_close(served, wanted) -> None:
    np.testing.assert_allclose(pd.DataFrame(served).to_numpy(float), pd.DataFrame(wanted).to_numpy(float),
                               rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def apps() -> dict[str, InProcessServer]:
    return {name: InProcessServer(FIXTURES / name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_mlflow_fixture_answers_as_mlflow_and_keras(apps, keras, name):
    case = expected(name)
    served = apps[name].post(case["request"]).json()

    assert served == case["predictions"]  # MLflow's own pyfunc answer, as its server encodes it
    assert_close(served["predictions"], keras_answer(keras, FIXTURES / name, case["request"]))


def test_fixtures_serve_over_http_with_two_workers():
    for name in NAMES:
        case = expected(name)
        server = RunningServer(FIXTURES / name, workers=2)
        try:
            for _ in range(4):  # both workers, each loading on its first request
                response = server.post(case["request"])
                assert response.json() == case["predictions"], server.output()
        finally:
            server.stop()


def test_capabilities_are_measured_and_hold():
    regressor = load_model(str(FIXTURES / "keras_regressor"))
    classifier = load_model(str(FIXTURES / "keras_classifier"))
    frame = request_input(expected("keras_regressor")["request"])
    tensor = request_input(expected("keras_classifier")["request"])

    assert regressor.model_format == "keras" and regressor.capabilities.predict_methods == ()
    assert regressor.row_independent and classifier.row_independent  # from their input examples
    for model, data in ((regressor, frame), (classifier, tensor)):
        batched = np.asarray(model.predict(data))
        alone = np.concatenate([np.asarray(model.predict(data[i:i + 1])) for i in range(len(data))])
        np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)
    assert regressor.array_input.matches(COLUMNS) and classifier.array_input is None
    from_matrix = regressor.predict(frame.to_numpy(np.float64))
    pd.testing.assert_frame_equal(from_matrix, regressor.predict(frame))  # a DataFrame answer either way


def test_row_independence_is_not_declared_without_an_example(copy_fixture):
    model_dir = copy_fixture("keras_regressor")
    edit_mlmodel(model_dir, lambda raw: raw.pop("saved_input_example_info"))

    assert load_model(str(model_dir)).row_independent is False


def test_no_other_predict_method_and_signature_enforced(apps):
    case = expected("keras_regressor")
    assert_error(apps["keras_regressor"].post({**case["request"], "params": {"predict_method": "predict_proba"}}),
                 400, "INVALID_PARAMETER_VALUE", "offers no other method")
    bad = {"dataframe_split": {"columns": COLUMNS, "data": [["wide", 0.3, 0.5, 1.0]]}}
    assert_error(apps["keras_regressor"].post(bad), 400, "BAD_REQUEST", "x1")
    assert_error(apps["keras_classifier"].post({"inputs": [[1.0, 2.0]]}), 400, "INVALID_PARAMETER_VALUE", "shape")


def test_cuda_is_refused_when_unavailable_in_one_line():
    with pytest.raises(ModelLoadError, match="device 'cuda' asked for, but torch sees 0 CUDA") as info:
        load_model(str(FIXTURES / "keras_classifier"), policy=LoadingPolicy(device="cuda"))
    assert "\n" not in str(info.value)


def test_missing_keras_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now raises ImportError
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(ModelLoadError, match=r"needs keras.*scoring-server\[keras\]"):
        load_model(str(FIXTURES / "keras_regressor"))


def test_policy_without_keras_format_refuses():
    with pytest.raises(ModelLoadError, match="stored as keras"):
        load_model(str(FIXTURES / "keras_regressor"), policy=LoadingPolicy(formats={"skops"}))


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["flavors"]["keras"].update(keras_backend="numpy"), "already runs Keras on 'torch'"),
    (lambda raw: raw["flavors"]["keras"].update(keras_backend="jax"), "needs jax: pip install jax"),
    (lambda raw: raw["flavors"]["keras"].update(save_exported_model=True), "exported as a TF SavedModel"),
    (lambda raw: raw["flavors"]["keras"].pop("keras_backend"), "a Keras 2 model"),
    (lambda raw: raw["flavors"]["python_function"].update(loader_module="mlflow.tensorflow"), "needs TensorFlow"),
])
def test_layouts_needing_another_backend_or_tensorflow_are_refused(copy_fixture, edit, message):
    model_dir = copy_fixture("keras_classifier")
    edit_mlmodel(model_dir, edit)
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(model_dir))


def test_lambda_layers_are_refused_by_safe_mode(keras, tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    save_model(model, tmp_path / "m", signature=False)
    with pytest.raises(ModelLoadError, match="safe mode refuses code stored in the model"):
        load_model(str(tmp_path / "m"))


def test_save_model_round_trip_serves_and_loads_in_mlflow(keras, tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    frame = pd.DataFrame(np.random.default_rng(3).normal(size=(4, 4)), columns=COLUMNS)
    saved = save_model(model, tmp_path / "ours", input_example=frame)

    assert saved.flavors["keras"]["keras_backend"] == "torch"
    assert (tmp_path / "ours" / "data" / "keras_module.txt").read_text() == "keras"
    request = {"dataframe_split": {"columns": COLUMNS, "data": frame.values.tolist()}}
    served = InProcessServer(tmp_path / "ours").post(request).json()["predictions"]
    own = model.predict(frame.values, verbose=0)
    assert_close(served, own)
    loaded = load_model(str(tmp_path / "ours"))
    assert loaded.row_independent and loaded.array_input.matches(COLUMNS)
    assert_close(mlflow_predict(tmp_path / "ours", frame), own)


def mlflow_predict(model_dir: Path, frame: pd.DataFrame) -> list:
    """Real MLflow's pyfunc answer (its venv, backend torch as MLmodel records)."""
    code = textwrap.dedent("""
        import json, sys, mlflow, pandas as pd
        frame = pd.DataFrame(**json.loads(sys.argv[2]))
        print(json.dumps(mlflow.pyfunc.load_model(sys.argv[1]).predict(frame).values.tolist()))
    """)
    result = subprocess.run([mlflow_python(), "-c", code, str(model_dir), frame.to_json(orient="split")],
                            capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def edit_mlmodel(model_dir: Path, edit) -> None:
    path = model_dir / "MLmodel"
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw))
