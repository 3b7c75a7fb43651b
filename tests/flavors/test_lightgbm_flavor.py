"""LightGBM models written by MLflow 3.17.2 (tests/fixtures/mlflow-models/lightgbm_*, see
scripts/flavor_fixtures/lightgbm.py) and by our save_model load without MLflow and answer as its pyfunc."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import yaml

from flavors import LoadingPolicy, load_model
from flavors.errors import ModelLoadError, UntrustedTypesError
from flavors.lightgbm import MLFLOW_SKOPS_TRUSTED_TYPES, save_model
from flavors.policy import FormatNotAllowedError

from ..conftest import InProcessServer, RunningServer, assert_error
from .conftest import MLFLOW_MODELS
from .tree_models import (
    assert_matrix_predicts_as_frame, assert_rows_independent, expected, framework, framework_not_imported_by,
    request_frame,
)

lgb = framework("lightgbm")
BOOSTER, CLASSIFIER = "lightgbm_booster", "lightgbm_classifier"
#: What an operator grants (--skops-trusted-types) to serve MLflow's skops LightGBM models.
GRANTED = LoadingPolicy(skops_trusted_types=MLFLOW_SKOPS_TRUSTED_TYPES)


def body(name: str, **params) -> dict:
    return {**expected(name)["request"], **({"params": params} if params else {})}


def load(name: str, policy: LoadingPolicy = GRANTED):
    return load_model(str(MLFLOW_MODELS / name), policy=policy)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The fixtures' models saved again by our save_model (Booster: model.lgb; classifier: skops)."""
    root = tmp_path_factory.mktemp("lgb")
    example = request_frame(BOOSTER).head(3)
    save_model(load(BOOSTER).predictor.booster, root / "booster", input_example=example)
    save_model(load(CLASSIFIER).predictor.estimator, root / "classifier", input_example=example)
    return root


def test_the_booster_is_read_natively_although_mlmodel_says_skops():
    conf = yaml.safe_load((MLFLOW_MODELS / BOOSTER / "MLmodel").read_text())["flavors"]["lightgbm"]
    model = load(BOOSTER, LoadingPolicy(formats={"lightgbm"}))
    frame = request_frame(BOOSTER)

    assert conf["serialization_format"] == "skops" and conf["data"] == "model.lgb"
    assert model.model_format == "lightgbm"
    assert model.predict(frame).tolist() == expected(BOOSTER)["predictions"]
    native = lgb.Booster(model_file=str(MLFLOW_MODELS / BOOSTER / "model.lgb"))
    np.testing.assert_array_equal(model.predict(frame), native.predict(frame))


def test_the_classifier_answers_labels_and_offers_probabilities():
    model = load(CLASSIFIER)
    frame = request_frame(CLASSIFIER)

    assert model.model_format == "skops"
    assert model.predict(frame).tolist() == expected(CLASSIFIER)["predictions"]
    assert model.capabilities.predict_methods == ("predict", "predict_proba", "decision_function")
    probabilities = model.predict(frame, {"predict_method": "predict_proba"})
    assert probabilities.tolist() == expected(CLASSIFIER)["predict_proba"]
    np.testing.assert_array_equal(probabilities, model.predictor.estimator.predict_proba(frame))


def test_the_skops_classifier_needs_the_lightgbm_types_granted():
    """skops trusts none of them; MLmodel lists four (LGBMRegressor too), which must all be granted."""
    with pytest.raises(UntrustedTypesError) as refused:
        load(CLASSIFIER, LoadingPolicy())
    assert refused.value.types == sorted(MLFLOW_SKOPS_TRUSTED_TYPES)
    assert "--skops-trusted-types " + ",".join(sorted(MLFLOW_SKOPS_TRUSTED_TYPES)) in str(refused.value)
    with pytest.raises(UntrustedTypesError, match="lightgbm.sklearn.LGBMRegressor"):
        load(CLASSIFIER, LoadingPolicy(skops_trusted_types=set(MLFLOW_SKOPS_TRUSTED_TYPES) - {
            "lightgbm.sklearn.LGBMRegressor"}))


@pytest.mark.parametrize("name", [BOOSTER, CLASSIFIER])
def test_rows_are_independent_and_a_float_matrix_predicts_as_the_frame(name):
    model = load(name)
    frame = request_frame(name)

    assert_rows_independent(model, frame)
    assert model.array_input.column_names == ("alpha", "beta", "gamma", "delta")
    assert_matrix_predicts_as_frame(model, frame)


def test_a_booster_with_pandas_categories_takes_no_matrix(tmp_path):
    frame = request_frame(BOOSTER).assign(alpha=lambda f: (f.alpha > 0).map({True: "hi", False: "lo"}).astype("category"))
    booster = lgb.train({"verbose": -1, "min_data_in_leaf": 1}, lgb.Dataset(frame, label=np.arange(8.0)), 2)
    save_model(booster, tmp_path / "m", signature=False)

    assert load_model(str(tmp_path / "m")).array_input is None


def test_served_in_process_the_answers_are_mlflows():
    booster = InProcessServer(MLFLOW_MODELS / BOOSTER)
    classifier = InProcessServer(MLFLOW_MODELS / CLASSIFIER, skops_trusted_types=list(MLFLOW_SKOPS_TRUSTED_TYPES))

    assert booster.post(body(BOOSTER)).json() == {"predictions": expected(BOOSTER)["predictions"]}
    assert classifier.post(body(CLASSIFIER)).json() == {"predictions": expected(CLASSIFIER)["predictions"]}
    answer = classifier.post(body(CLASSIFIER, predict_method="predict_proba")).json()
    assert answer == {"predictions": expected(CLASSIFIER)["predict_proba"]}
    assert_error(classifier.post(body(CLASSIFIER, predict_method="apply")), 400, "INVALID_PARAMETER_VALUE",
                 "must be one of predict, predict_proba, decision_function")
    wrong = {"dataframe_split": {"columns": ["alpha", "beta", "gamma", "delta"], "data": [[1.0, "x", 2.0, 3.0]]}}
    assert_error(booster.post(wrong), 400, "BAD_REQUEST", "beta")


@pytest.mark.parametrize("name, ours", [(BOOSTER, None), (CLASSIFIER, None), (BOOSTER, "booster"),
                                        (CLASSIFIER, "classifier")])
def test_served_over_http_by_two_workers_the_answers_are_mlflows(saved, name, ours):
    server = RunningServer(saved / ours if ours else MLFLOW_MODELS / name, "--skops-trusted-types",
                           ",".join(MLFLOW_SKOPS_TRUSTED_TYPES), workers=2)
    try:
        answers = [server.post(json.dumps(body(name))).json() for _ in range(4)]  # both workers, likely
    finally:
        server.stop()
    assert answers == [{"predictions": expected(name)["predictions"]}] * 4


def test_our_save_writes_mlflows_layout(saved):
    for ours, theirs, model_file in (("booster", BOOSTER, "model.lgb"), ("classifier", CLASSIFIER, "model.skops")):
        mine = yaml.safe_load((saved / ours / "MLmodel").read_text())
        mlflows = yaml.safe_load((MLFLOW_MODELS / theirs / "MLmodel").read_text())
        assert (saved / ours / model_file).is_file()
        assert {**mine["flavors"]["lightgbm"], "skops_trusted_types": None} == {
            **mlflows["flavors"]["lightgbm"], "skops_trusted_types": None}
        assert sorted(mine["flavors"]["lightgbm"]["skops_trusted_types"]) == sorted(MLFLOW_SKOPS_TRUSTED_TYPES)
        assert mine["flavors"]["python_function"]["data"] == model_file
        assert mine["signature"]["inputs"] == mlflows["signature"]["inputs"]
        assert mine["signature"]["outputs"] == mlflows["signature"]["outputs"]


def test_a_policy_without_the_lightgbm_format_refuses_a_booster():
    with pytest.raises(FormatNotAllowedError, match="stored as lightgbm"):
        load(BOOSTER, LoadingPolicy(formats={"skops"}))


def test_a_missing_lightgbm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm now raises ImportError

    with pytest.raises(ModelLoadError, match=r"needs lightgbm, which is not installed: pip install 'scoring-server\[lightgbm\]'"):
        load(BOOSTER)


def test_importing_the_flavor_does_not_import_lightgbm():
    assert framework_not_imported_by("flavors.lightgbm", "lightgbm")
