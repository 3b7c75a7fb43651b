"""XGBoost models written by MLflow 3.17.2 (tests/fixtures/mlflow-models/xgboost_*, see
scripts/flavor_fixtures/xgboost.py) and by our save_model load natively and answer as MLflow's pyfunc."""
from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import yaml

from flavors import LoadingPolicy, load_model
from flavors.errors import ModelLoadError
from flavors.policy import FormatNotAllowedError
from flavors.xgboost import save_model

from ..conftest import InProcessServer, RunningServer, assert_error
from .conftest import MLFLOW_MODELS
from .tree_models import (
    assert_matrix_predicts_as_frame, assert_rows_independent, assert_same_float32, expected, framework, framework_not_imported_by,
    request_frame,
)

xgb = framework("xgboost")
BOOSTER, CLASSIFIER = "xgboost_booster", "xgboost_classifier"


def body(name: str, **params) -> dict:
    return {**expected(name)["request"], **({"params": params} if params else {})}


def native(name: str):
    """The fixture's model as XGBoost itself loads it."""
    conf = yaml.safe_load((MLFLOW_MODELS / name / "MLmodel").read_text())["flavors"]["xgboost"]
    model = xgb.Booster() if conf["model_class"] == "xgboost.core.Booster" else xgb.XGBClassifier()
    model.load_model(MLFLOW_MODELS / name / conf["data"])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The fixtures' models saved again by our save_model (Booster: default ubj; classifier: json)."""
    root = tmp_path_factory.mktemp("xgb")
    example = request_frame(BOOSTER).head(3)
    save_model(native(BOOSTER), root / "booster", input_example=(example, {"output_margin": False}))
    save_model(native(CLASSIFIER), root / "classifier", input_example=example, model_format="json")
    return root


def test_the_booster_answers_mlflows_float32_probabilities_and_xgboosts_own():
    model = load_model(str(MLFLOW_MODELS / BOOSTER))
    frame = request_frame(BOOSTER)
    answer = model.predict(frame)

    assert model.model_format == "xgboost" and answer.dtype == np.float32
    np.testing.assert_array_equal(answer, np.asarray(expected(BOOSTER)["predictions"], dtype=np.float32))
    np.testing.assert_array_equal(answer, native(BOOSTER).predict(xgb.DMatrix(frame)))


def test_the_classifier_answers_labels_and_offers_probabilities():
    model = load_model(str(MLFLOW_MODELS / CLASSIFIER))
    frame = request_frame(CLASSIFIER)

    assert model.predict(frame).tolist() == expected(CLASSIFIER)["predictions"]
    assert model.capabilities.predict_methods == ("predict", "predict_proba")
    probabilities = model.predict(frame, {"predict_method": "predict_proba"})
    np.testing.assert_array_equal(probabilities, native(CLASSIFIER).predict_proba(frame))
    np.testing.assert_array_equal(probabilities, np.asarray(expected(CLASSIFIER)["predict_proba"], dtype=np.float32))


@pytest.mark.parametrize("name", [BOOSTER, CLASSIFIER])
def test_rows_are_independent_and_a_float_matrix_predicts_as_the_frame(name):
    model = load_model(str(MLFLOW_MODELS / name))
    frame = request_frame(name)

    assert_rows_independent(model, frame)
    assert model.array_input.column_names == ("alpha", "beta", "gamma", "delta")
    assert_matrix_predicts_as_frame(model, frame)


def test_a_booster_with_categorical_features_takes_no_matrix(tmp_path):
    frame = request_frame(BOOSTER).assign(alpha=lambda f: (f.alpha > 0).map({True: "hi", False: "lo"}).astype("category"))
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(frame, label=np.arange(8) % 2, enable_categorical=True), 2)
    save_model(booster, tmp_path / "m", signature=False)

    assert load_model(str(tmp_path / "m")).array_input is None


def test_served_in_process_the_answers_are_mlflows():
    booster, classifier = InProcessServer(MLFLOW_MODELS / BOOSTER), InProcessServer(MLFLOW_MODELS / CLASSIFIER)

    assert_same_float32(booster.post(body(BOOSTER)).json()["predictions"], expected(BOOSTER)["predictions"])
    assert classifier.post(body(CLASSIFIER)).json() == {"predictions": expected(CLASSIFIER)["predictions"]}
    answer = classifier.post(body(CLASSIFIER, predict_method="predict_proba")).json()["predictions"]
    assert_same_float32(answer, expected(CLASSIFIER)["predict_proba"])


def test_a_method_the_classifier_lacks_and_a_wrong_column_type_are_400s():
    classifier = InProcessServer(MLFLOW_MODELS / CLASSIFIER)
    assert_error(classifier.post(body(CLASSIFIER, predict_method="apply")), 400, "INVALID_PARAMETER_VALUE",
                 "must be one of predict, predict_proba")
    wrong = {"dataframe_split": {"columns": ["alpha", "beta", "gamma", "delta"], "data": [["x", 1.0, 2.0, 3.0]]}}
    assert_error(classifier.post(wrong), 400, "BAD_REQUEST", "alpha")


def test_a_booster_gets_the_params_its_signature_declares_as_predict_keywords(saved):
    """As MLflow's pyfunc: ``output_margin`` reaches ``Booster.predict``; undeclared params do not."""
    server = InProcessServer(saved / "booster")
    margins = server.post(body(BOOSTER, output_margin=True)).json()["predictions"]

    assert_same_float32(margins, native(BOOSTER).predict(xgb.DMatrix(request_frame(BOOSTER)), output_margin=True))
    for params in ({"output_margin": False}, {"pred_leaf": True}):  # pred_leaf: not in the signature
        assert_same_float32(server.post(body(BOOSTER, **params)).json()["predictions"], expected(BOOSTER)["predictions"])


@pytest.mark.parametrize("name, ours", [(BOOSTER, None), (CLASSIFIER, None), (BOOSTER, "booster"),
                                        (CLASSIFIER, "classifier")])
def test_served_over_http_by_two_workers_the_answers_are_mlflows(saved, name, ours):
    server = RunningServer(saved / ours if ours else MLFLOW_MODELS / name, workers=2)
    try:
        answer = server.post(json.dumps(body(name))).json()["predictions"]
    finally:
        server.stop()
    assert_same_float32(answer, expected(name)["predictions"])


def test_our_save_writes_mlflows_layout(saved):
    for ours, theirs, model_file in (("booster", BOOSTER, "model.ubj"), ("classifier", CLASSIFIER, "model.json")):
        mine = yaml.safe_load((saved / ours / "MLmodel").read_text())
        mlflows = yaml.safe_load((MLFLOW_MODELS / theirs / "MLmodel").read_text())
        assert (saved / ours / model_file).is_file()
        assert mine["flavors"]["xgboost"] == {**mlflows["flavors"]["xgboost"], "xgb_version": xgb.__version__}
        assert mine["flavors"]["python_function"]["data"] == model_file
        assert mine["signature"]["inputs"] == mlflows["signature"]["inputs"]
        assert mine["signature"]["outputs"] == mlflows["signature"]["outputs"]


def test_only_xgboost_model_classes_are_instantiated(copy_fixture):
    path = copy_fixture(BOOSTER)
    mlmodel = (path / "MLmodel").read_text().replace("xgboost.core.Booster", "collections.OrderedDict")
    (path / "MLmodel").write_text(mlmodel)

    with pytest.raises(ModelLoadError, match="'collections.OrderedDict' in MLmodel is not an XGBoost model class"):
        load_model(str(path))


def test_a_policy_without_the_xgboost_format_refuses_it():
    with pytest.raises(FormatNotAllowedError, match="stored as xgboost"):
        load_model(str(MLFLOW_MODELS / BOOSTER), policy=LoadingPolicy(formats={"skops"}))


def test_cuda_is_used_when_xgboost_sees_a_gpu_and_refused_in_one_line_otherwise():
    probe = native(BOOSTER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe.set_param({"device": "cuda"})
        gpu = json.loads(probe.save_config())["learner"]["generic_param"]["device"].startswith("cuda")
    if gpu:
        assert load_model(str(MLFLOW_MODELS / BOOSTER), policy=LoadingPolicy(device="cuda")).predict(
            request_frame(BOOSTER)).tolist() == pytest.approx(expected(BOOSTER)["predictions"], rel=1e-6)
        return
    with pytest.raises(ModelLoadError, match="device cuda was asked for but XGBoost finds no usable GPU") as raised:
        load_model(str(MLFLOW_MODELS / BOOSTER), policy=LoadingPolicy(device="cuda"))
    assert "\n" not in str(raised.value)


def test_a_missing_xgboost_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now raises ImportError

    with pytest.raises(ModelLoadError, match=r"needs xgboost, which is not installed: pip install 'scoring-server\[xgboost\]'"):
        load_model(str(MLFLOW_MODELS / BOOSTER))


def test_importing_the_flavor_does_not_import_xgboost():
    assert framework_not_imported_by("flavors.xgboost", "xgboost")
