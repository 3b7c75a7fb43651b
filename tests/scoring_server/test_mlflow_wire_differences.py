"""Wire differences from MLflow 3.17.2 found by the differential corpus (scripts/compare_with_mlflow.py),
each answered as MLflow answers it."""
from __future__ import annotations

import json

import pandas as pd
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


@pytest.mark.parametrize("body", [{"instances": [[5.1, "x", 1.4, 0.2]]}, {"inputs": [[5.1, "x", 1.4, 0.2]]},
                                  {"instances": [[5.1, 3.5], [1.4]]}, {"instances": "abc"}, {"inputs": "abc"}])
def test_unconvertible_rows_or_a_string_for_a_column_signature_are_bad_requests(iris_app, body):
    assert_error(iris_app.post(body), 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", [{"instances": [[5.1, 3.5, 1.4, 0.2]]}, {"inputs": [[5.1, 3.5, 1.4, 0.2]]}])
def test_numeric_rows_for_a_column_signature_miss_its_columns(iris_app, body):
    assert_error(iris_app.post(body), 400, "INVALID_PARAMETER_VALUE")  # MLflow 3.17 (iris/instances_rows)


def test_records_given_as_lists_get_numbered_columns(iris_app):
    assert_error(iris_app.post({"dataframe_records": [[5.1, 3.5, 1.4, 0.2]]}), 400, "INVALID_PARAMETER_VALUE",
                 "Model is missing inputs", "extra inputs: [0, 1, 2, 3]")


def test_duplicate_split_columns_are_refused_by_name(iris_app):
    split = {"columns": [*IRIS_COLUMNS, "sepal_length"], "data": [[5.1, 3.5, 1.4, 0.2, 5.1]]}
    assert_error(iris_app.post({"dataframe_split": split}), 400, "INVALID_PARAMETER_VALUE",
                 "Columns named more than once: ['sepal_length']")


def test_a_csv_header_naming_a_column_twice_is_malformed(iris_app):
    body = ",".join([*IRIS_COLUMNS, "sepal_length"]) + "\n5.1,3.5,1.4,0.2,5.1\n"
    assert_error(iris_app.post(body, content_type="text/csv"), 400, "BAD_REQUEST", "more than once: ['sepal_length']")
    dotted = ",".join([*IRIS_COLUMNS, "x.1"]) + "\n5.1,3.5,1.4,0.2,1\n"
    assert iris_app.post(dotted, content_type="text/csv").status_code == 200


def _string_column(frame_or_values):
    from flavors.signature import ColSpec, ScalarType, Schema
    from scoring_server.schema.columns import enforce_column_schema

    return enforce_column_schema(frame_or_values, Schema((ColSpec(ScalarType("string"), "x"),)))["x"]


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_tensor_formats_give_a_string_column_as_text_like_mlflow(key):
    """MLflow builds these columns with numpy's text type: the model sees '7' and 'True', not 7 and True;
    a null stays missing (deliberate: MLflow makes it the text 'None')."""
    from flavors.signature import ColSpec, ModelSignature, ScalarType, Schema
    from scoring_server.decoding.json_formats import decode_json_payload

    signature = ModelSignature(inputs=Schema((ColSpec(ScalarType("string"), "x"),)))
    values = [7, 1.5, True, "s", {"a": 1}, float("nan")]
    column = _string_column(decode_json_payload({key: {"x": values}}, signature).data)
    assert str(column.dtype) == "str"
    assert column.tolist() == ["7", "1.5", "True", "s", "{'a': 1}", "nan"]
    assert _string_column(decode_json_payload({key: {"x": [None, [1]]}}, signature).data).tolist() == [None, ["1"]]


def test_good_text_keeps_the_pandas_str_dtype_mlflow_gives_the_model():
    from scoring_server.decoding.json_formats import decode_dataframe_split

    assert str(_string_column(decode_dataframe_split({"columns": ["x"], "data": [["s"]]})).dtype) == "str"


def test_csv_string_columns_are_read_as_objects_like_mlflow():
    from flavors.signature import ColSpec, ScalarType, Schema
    from scoring_server.decoding.csv_body import decode_csv

    column = _string_column(decode_csv(b"x\n007\n", Schema((ColSpec(ScalarType("string"), "x"),))))
    assert column.dtype == object and column.tolist() == ["007"]


@pytest.mark.parametrize("number", [1.5, float("inf"), float("-inf"), 2.0**70])
def test_a_datetime_number_that_is_not_whole_int64_nanoseconds_is_refused(number):
    """MLflow refuses these (instances/inputs) where pandas would round them or make them NaT."""
    from flavors.signature import ColSpec, ScalarType, Schema
    from scoring_server.errors import ScoringError
    from scoring_server.schema.columns import enforce_column_schema

    schema = Schema((ColSpec(ScalarType("datetime"), "x"),))
    with pytest.raises(ScoringError, match="whole nanoseconds"):
        enforce_column_schema({"x": [number]}, schema)
    column = enforce_column_schema({"x": [7.0, float("nan")]}, schema)["x"]
    assert column[0] == pd.Timestamp(7) and pd.isna(column[1])


def _signature(*specs):
    from flavors.signature import ModelSignature, Schema

    return ModelSignature(inputs=Schema(tuple(specs)))


def _enforced(body, signature):
    from scoring_server.decoding.json_formats import decode_json_payload
    from scoring_server.schema import enforce_input_schema

    return enforce_input_schema(decode_json_payload(body, signature).data, signature.inputs)


def _error_code(body, signature) -> str:
    from scoring_server.errors import ScoringError

    with pytest.raises(ScoringError) as caught:
        _enforced(body, signature)
    return caught.value.error_code


@pytest.mark.parametrize("kind", ["double", "long", "datetime", "boolean"])
@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_a_list_in_a_scalar_column_of_a_tensor_format_fails_the_schema_check(kind, key):
    """MLflow makes such a column a two-dimensional array, which its schema check refuses."""
    from flavors.signature import ColSpec, ScalarType

    signature = _signature(ColSpec(ScalarType(kind), "x"))
    assert _error_code({key: {"x": [[1]]}}, signature) == "INVALID_PARAMETER_VALUE"
    assert _error_code({"dataframe_split": {"columns": ["x"], "data": [[[1]]]}}, signature) == "BAD_REQUEST"


def test_a_timezone_aware_datetime_fails_the_schema_check():
    from flavors.signature import ColSpec, ScalarType

    signature = _signature(ColSpec(ScalarType("datetime"), "x"))
    for body in ({"dataframe_split": {"columns": ["x"], "data": [["2024-01-02T03:04:05+02:00"]]}},
                 {"instances": [{"x": "2024-01-02T03:04:05+02:00"}]}):
        assert _error_code(body, signature) == "INVALID_PARAMETER_VALUE"


def test_a_dataframe_column_of_lists_is_stacked_into_the_tensor():
    """MLflow's reading of a DataFrame for a tensor signature: each row's tensor flattened into a
    list in one column, stacked and reshaped to the spec."""
    import numpy as np

    from flavors.signature import TensorSpec

    image = _signature(TensorSpec(np.dtype("float32"), (-1, 2, 2)))
    tensor = _enforced({"dataframe_split": {"columns": ["img"], "data": [[[1, 2, 3, 4]], [[5, 6, 7, 8]]]}}, image)
    assert tensor.dtype == np.float32 and tensor.tolist() == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    for ragged in ([[[1, 2, 3, 4]], [[5, 6]]], [[[1, 2, 3]]]):
        assert _error_code({"dataframe_split": {"columns": ["img"], "data": ragged}}, image) == "INVALID_PARAMETER_VALUE"
    assert _error_code({"dataframe_records": [{"img": {"a": 1}}]}, image) == "BAD_REQUEST"
    assert _error_code({"dataframe_split": {"data": [[1.0]]}}, image) == "INVALID_PARAMETER_VALUE"  # scalars


def test_named_tensors_read_from_a_dataframe_reshape_each_column():
    import numpy as np

    from flavors.signature import TensorSpec

    signature = _signature(TensorSpec(np.dtype("float64"), (-1,), "a"), TensorSpec(np.dtype("int64"), (-1, 1), "b"))
    tensors = _enforced({"dataframe_records": [{"a": [1.5], "b": 3}, {"a": [2.5], "b": 4}]}, signature)
    assert tensors["a"].tolist() == [1.5, 2.5] and tensors["b"].tolist() == [[3], [4]]
    assert tensors["b"].dtype == np.int64
    assert _error_code({"dataframe_records": [{"a": [1.5, 2.5], "b": 3}]}, signature) == "INVALID_PARAMETER_VALUE"


def test_a_list_where_a_tensor_takes_a_number_fails_the_schema_check():
    import numpy as np

    from flavors.signature import TensorSpec

    signature = _signature(TensorSpec(np.dtype("float32"), (-1, 2)))
    assert _error_code({"dataframe_split": {"data": [[[1], 2.0]]}}, signature) == "INVALID_PARAMETER_VALUE"
    assert _error_code({"dataframe_split": {"data": [["x", 2.0]]}}, signature) == "BAD_REQUEST"
