"""A model without a signature is scored as the client sent it, with no enforcement."""
from __future__ import annotations

from .test_mlflow_observed_iris import COLUMNS, RECORD, ROW


def test_split_records_and_csv_predict(iris_nosig_app):
    assert iris_nosig_app.post({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}).json() == {"predictions": [0]}
    assert iris_nosig_app.post({"dataframe_records": [RECORD]}).json() == {"predictions": [0]}
    csv = ",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    assert iris_nosig_app.post(csv, "text/csv").json() == {"predictions": [0, 2]}


def test_instances_as_plain_rows_reach_the_model(iris_nosig_app):
    assert iris_nosig_app.post({"instances": [ROW, [6.7, 3.0, 5.2, 2.3]]}).json() == {"predictions": [0, 2]}


def test_params_are_ignored_without_a_param_schema(iris_nosig_app):
    body = {"dataframe_records": [RECORD], "params": {"anything": [1, 2]}}
    assert iris_nosig_app.post(body).json() == {"predictions": [0]}


def test_instances_as_records_become_columns_for_sklearn(iris_nosig_app):
    assert iris_nosig_app.post({"instances": [RECORD]}).json() == {"predictions": [0]}
