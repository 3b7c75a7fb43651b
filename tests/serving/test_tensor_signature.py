"""A model with a tensor signature (saved from numpy examples), scored through the app."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from flavors.signature import infer_signature
from flavors.sklearn import save_model
from scoring_server.cli import main

from ..conftest import InProcessServer

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def tensor_app(tmp_path_factory):
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path_factory.mktemp("tensor") / "model"
    save_model(model, path, signature=infer_signature(X[:3], model.predict(X[:3])), input_example=X[:3])
    return InProcessServer(path)


@pytest.mark.parametrize(
    "payload",
    [{"instances": ROWS}, {"inputs": ROWS}, {"inputs": [[5, 3, 1, 0], [6.7, 3.0, 5.2, 2.3]]},
     {"dataframe_split": {"columns": ["p", "q", "r", "s"], "data": ROWS}}],
    ids=["instances", "inputs", "ints_widen", "split_any_column_names"],
)
def test_rows_are_cast_to_the_tensor_dtype(tensor_app, payload):
    assert tensor_app.post(payload).json() == {"predictions": [0, 2]}


def test_csv_rows_become_the_tensor(tensor_app):
    assert tensor_app.post("a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv").json() == {"predictions": [0, 2]}


def test_wrong_shape_is_invalid_parameter(tensor_app):
    response = tensor_app.post({"inputs": [[1.0, 2.0, 3.0]]})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "(1, 3) does not match expected shape (-1, 4)" in response.json()["message"]


def test_text_in_a_float_tensor_is_bad_request(tensor_app):
    response = tensor_app.post({"inputs": [["a", 1, 2, 3]]})
    assert response.status_code == 400 and response.json()["error_code"] == "BAD_REQUEST"


def test_validate_uses_the_ndarray_serving_example(tensor_app):
    result = CliRunner().invoke(main, ["validate", "-m", str(tensor_app.model_dir)])
    assert result.exit_code == 0, result.output
