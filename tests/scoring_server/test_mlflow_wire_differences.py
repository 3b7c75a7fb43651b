"""Wire differences from MLflow 3.17.2 found by the differential corpus (scripts/compare_with_mlflow.py),
each answered as MLflow answers it."""
from __future__ import annotations

import json

import pytest

from scoring_server.decoding.json_body import parse_json

from ..conftest import assert_error

DAY_COLUMNS = ["a", "b", "c"]
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_literals_are_scored(iris_app, literal):
    """Python's json.dumps and requests' json= write these literals; MLflow scores them (200).
    (In a column the model ignores: the iris estimator itself refuses NaN.)"""
    columns = json.dumps([*IRIS_COLUMNS, "extra"])
    body = '{"dataframe_split": {"columns": %s, "data": [[5.1, 3.5, 1.4, 0.2, %s]]}}' % (columns, literal)
    response = iris_app.post(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0]}


def test_non_finite_literals_parse_only_as_python_writes_them():
    assert json.dumps(parse_json(b'[NaN, Infinity, -Infinity]')) == "[NaN, Infinity, -Infinity]"
    for body in (b'[nan]', b'[NaN', b'[' * 5000 + b'NaN' + b']' * 5000):
        with pytest.raises(Exception, match="valid JSON"):
            parse_json(body)


@pytest.mark.parametrize("split, received", [
    ({"columns": DAY_COLUMNS, "data": [[1.0, 2.0, 3.0]], "orient": "split"}, "{'columns', 'data', 'orient'}"),
    ({"columns": DAY_COLUMNS}, "{'columns'}"),
])
def test_dataframe_split_keys_are_checked_like_mlflow(day_models_app, split, received):
    assert_error(day_models_app.post({"dataframe_split": split}), 400, "BAD_REQUEST",
                 "Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. "
                 f"Got {received}.")
