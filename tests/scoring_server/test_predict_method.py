"""``params: {"predict_method": ...}``: a request chooses among the methods its model's flavor offers,
is refused clearly otherwise, and never changes a model whose own signature declares that param."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from flavors import load_model
from flavors.python_function import save_model as save_pyfunc
from flavors.python_model import PythonModel
from flavors.signature import ColSpec, ModelSignature, ParamSchema, ParamSpec, ScalarType, Schema
from flavors.sklearn import save_model as save_sklearn
from scoring_server.pipeline import BatchingPolicy, Scorer

from ..conftest import FIXTURES, InProcessServer, assert_error

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def iris() -> InProcessServer:
    return InProcessServer(FIXTURES / "iris")


def _post(server: InProcessServer, params: dict | None = None, rows: list = ROWS):
    body = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": rows}}
    if params is not None:
        body["params"] = params
    return server.post(json.dumps(body), "application/json")


def test_a_classifier_answers_with_the_method_a_request_chooses(iris):
    estimator = load_model(str(FIXTURES / "iris")).predictor.estimator
    frame = pd.DataFrame(ROWS, columns=IRIS_COLUMNS)
    assert _post(iris).json() == {"predictions": estimator.predict(frame).tolist()}
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        answer = _post(iris, {"predict_method": method}).json()["predictions"]
        np.testing.assert_allclose(answer, getattr(estimator, method)(frame), rtol=1e-12)
    assert _post(iris, {"predict_method": "predict"}).json() == _post(iris).json()


@pytest.mark.parametrize("method", ["fit", "score", "__class__", ["predict_proba"], 3, None])
def test_a_method_the_model_does_not_offer_is_a_400_naming_those_it_does(iris, method):
    response = _post(iris, {"predict_method": method})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "'predict_method'",
                 "predict, predict_proba, predict_log_proba, decision_function")


def test_a_regressor_offers_no_probabilities(tmp_path):
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    save_sklearn(LinearRegression().fit(X, [1.0, 3.0, 5.0]), tmp_path / "m", input_example=X)
    server = InProcessServer(tmp_path / "m")
    body = {"dataframe_split": {"columns": ["x"], "data": [[3.0]]}, "params": {"predict_method": "predict_proba"}}
    assert_error(server.post(json.dumps(body), "application/json"), 400, "INVALID_PARAMETER_VALUE",
                 "must be one of predict")


class _Echo(PythonModel):
    def predict(self, context, model_input, params=None):
        return [params["predict_method"]] * len(model_input)


def test_a_model_declaring_the_param_itself_gets_it_as_its_own(tmp_path):
    signature = ModelSignature(Schema([ColSpec(ScalarType("double"), "x")]),
                               params=ParamSchema([ParamSpec("predict_method", ScalarType("string"), "mine")]))
    save_pyfunc(tmp_path / "m", python_model=_Echo(), signature=signature)
    server = InProcessServer(tmp_path / "m")
    body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
    assert server.post(json.dumps(body), "application/json").json() == {"predictions": ["mine"]}
    body["params"] = {"predict_method": "anything"}
    assert server.post(json.dumps(body), "application/json").json() == {"predictions": ["anything"]}


def test_a_model_offering_no_choice_refuses_one(tmp_path):
    save_pyfunc(tmp_path / "m", python_model=_Echo(), signature=ModelSignature(Schema([ColSpec(ScalarType("double"), "x")])))
    server = InProcessServer(tmp_path / "m")
    body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}, "params": {"predict_method": "predict_proba"}}
    assert_error(server.post(json.dumps(body), "application/json"), 400, "INVALID_PARAMETER_VALUE",
                 "this model offers no other method")


def test_requests_choosing_different_methods_are_never_batched_together(tmp_path):
    """The batcher merges only requests with equal params: each answer has its own method's shape."""
    X = pd.DataFrame(np.random.default_rng(0).random((30, 2)), columns=["a", "b"])
    save_sklearn(LogisticRegression().fit(X, np.arange(30) % 2), tmp_path / "m", input_example=X)
    scorer = Scorer(load_model(str(tmp_path / "m")), batching=BatchingPolicy(64, 5.0, threads=True))
    bodies = [json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[0.1, 0.2]]},
                          **({"params": {"predict_method": "predict_proba"}} if i % 2 else {})}).encode()
              for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        answers = [json.loads(answer)["predictions"] for answer in
                   pool.map(lambda body: scorer.score(body, "application/json"), bodies)]
    assert all(isinstance(answer[0], list) == bool(i % 2) for i, answer in enumerate(answers))
