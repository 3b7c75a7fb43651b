"""The iris fixture answers every request of ../shared/mlflow-protocol-observed.md as MLflow did."""
from __future__ import annotations

import pytest

from ..conftest import assert_error

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]
RECORD = dict(zip(COLUMNS, ROW))

SUCCESSES = {
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": [ROW]}},
    "dataframe_records": {"dataframe_records": [RECORD]},
    "instances_records": {"instances": [RECORD]},
    "inputs_columns": {"inputs": {name: [value] for name, value in RECORD.items()}},
    "ints_widen_to_double": {"dataframe_split": {"columns": COLUMNS, "data": [[5, 3, 1, 0]]}},
    "extra_column_ignored": {"dataframe_split": {"columns": [*COLUMNS, "extra"], "data": [[*ROW, 9]]}},
    "inputs_scalar_columns": {"inputs": RECORD},
    "numeric_strings_and_bools": {"dataframe_split": {"columns": COLUMNS, "data": [["5.1", 3.5, 1.4, False]]}},
}


@pytest.mark.parametrize("payload", SUCCESSES.values(), ids=SUCCESSES.keys())
def test_json_formats_predict_class_zero(iris_app, payload):
    response = iris_app.post(payload)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"predictions": [0]}


def test_columns_in_any_order_are_reordered_to_the_signature(iris_app):
    response = iris_app.post({"dataframe_split": {"columns": COLUMNS[::-1], "data": [ROW[::-1]]}})
    assert response.json() == {"predictions": [0]}


def test_csv_header_and_two_rows(iris_app):
    body = ",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    response = iris_app.post(body, "text/csv")
    assert response.status_code == 200
    assert response.json() == {"predictions": [0, 2]}


def test_application_csv_is_accepted_as_csv(iris_app):
    body = ",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n"
    assert iris_app.post(body, "application/csv").json() == {"predictions": [0]}


def test_parquet_body(iris_app, tmp_path):
    import pandas as pd

    path = tmp_path / "rows.parquet"
    pd.DataFrame([ROW, [6.7, 3.0, 5.2, 2.3]], columns=COLUMNS).to_parquet(path)
    response = iris_app.post(path.read_bytes(), "application/vnd.apache.parquet")
    assert response.json() == {"predictions": [0, 2]}


def test_string_for_double_is_bad_request_naming_column(iris_app):
    response = iris_app.post({"dataframe_split": {"columns": COLUMNS, "data": [["a", 3, 1, 0]]}})
    assert_error(response, 400, "BAD_REQUEST", "Failed to convert column sepal_length to type 'float64'")


def test_missing_columns_are_invalid_parameter_naming_them(iris_app):
    response = iris_app.post({"dataframe_split": {"columns": ["x", "y"], "data": [[1, 2]]}})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "Model is missing inputs", "'sepal_length'", "'x'")


def test_empty_split_data_is_a_model_error(iris_app):
    response = iris_app.post({"dataframe_split": {"columns": COLUMNS, "data": []}})
    assert_error(response, 400, "BAD_REQUEST", "Encountered an unexpected error while evaluating the model")


def test_empty_records_are_invalid_parameter(iris_app):
    assert_error(iris_app.post({"dataframe_records": []}), 400, "INVALID_PARAMETER_VALUE", "missing inputs")


def test_null_in_required_double_is_a_model_error_without_stack_trace(iris_app):
    response = iris_app.post({"dataframe_split": {"columns": COLUMNS, "data": [[None, 3.5, 1.4, 0.2]]}})
    assert_error(response, 400, "BAD_REQUEST", "Encountered an unexpected error while evaluating the model")


@pytest.mark.parametrize(
    "payload, received",
    [
        ({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}, "instances": [ROW]},
         "Received dictionary with input fields: ['dataframe_split', 'instances']"),
        ({"foo": 1}, "Received dictionary with input fields: []"),
        ([1, 2], "Received a list."),
        (3, "Received unexpected input type"),
    ],
    ids=["two_format_keys", "no_format_key", "top_level_list", "top_level_number"],
)
def test_malformed_wrappers_are_bad_request(iris_app, payload, received):
    response = iris_app.post(payload)
    assert_error(response, 400, "BAD_REQUEST", "The input must be a JSON dictionary with exactly one", received)


def test_invalid_json_is_bad_request(iris_app):
    response = iris_app.post('{"dataframe_split": ')
    assert_error(response, 400, "BAD_REQUEST", "Invalid input. Ensure that input is a valid JSON formatted string.")


def test_csv_with_wrong_columns_is_invalid_parameter(iris_app):
    assert_error(iris_app.post("x,y\n1,2\n", "text/csv"), 400, "INVALID_PARAMETER_VALUE", "missing inputs")


@pytest.mark.parametrize(
    "content_type, fragment",
    [
        ("text/plain", "This predictor only supports the following content types: Types: "
                       "['text/csv', 'application/json', 'application/vnd.apache.parquet']. Got 'text/plain'."),
        ("application/json; charset=latin-1", "The scoring server only supports UTF-8"),
        ("application/json; format=pandas-split", "Unrecognized content type parameters: format."),
        ("APPLICATION/JSON", "only supports the following content types"),
        ("application/json;", "Unrecognized content type parameters"),
        ('application/json; charset="utf-8"', "only supports UTF-8"),
        ("multipart/form-data; boundary=x", "Unrecognized content type parameters: boundary"),
        ("", "only supports the following content types"),
        (None, "only supports the following content types"),
    ],
    ids=["text_plain", "latin1", "format_param", "upper_case", "empty_param", "quoted_charset", "multipart",
         "empty", "missing"],
)
def test_unsupported_content_types_are_415_json(iris_app, content_type, fragment):
    response = iris_app.post({"dataframe_records": [RECORD]}, content_type)
    assert_error(response, 415, "BAD_REQUEST", fragment)


def test_upper_case_utf8_charset_is_accepted(iris_app):
    response = iris_app.post({"dataframe_records": [RECORD]}, "application/json; charset=UTF-8")
    assert response.json() == {"predictions": [0]}
