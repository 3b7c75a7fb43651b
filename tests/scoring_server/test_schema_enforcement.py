"""Signature enforcement rules for columns, tensors and params."""
import base64
import json

import numpy as np
import pandas as pd
import pytest

from flavors.signature import ModelSignature
from scoring_server.errors import ScoringError
from scoring_server.schema import enforce_input_schema, enforce_params


def schema(*specs):
    return ModelSignature.from_mlmodel({"inputs": json.dumps(list(specs))}).inputs


def col(kind, name, required=True, **extra):
    return {"type": kind, "name": name, "required": required, **extra}


def refused(data, input_schema, code):
    with pytest.raises(ScoringError) as raised:
        enforce_input_schema(data, input_schema)
    assert raised.value.error_code == code, raised.value.message
    return raised.value.message


# --- columns ---------------------------------------------------------------------------

def test_columns_are_reordered_and_extras_dropped():
    out = enforce_input_schema(pd.DataFrame({"z": [0], "b": [2.0], "a": [1.0]}), schema(col("double", "a"), col("double", "b")))
    assert list(out.columns) == ["a", "b"]


def test_missing_required_columns_are_named():
    message = refused(pd.DataFrame({"x": [1]}), schema(col("double", "a"), col("double", "b")), "INVALID_PARAMETER_VALUE")
    assert "['a', 'b']" in message and "extra inputs: ['x']" in message


def test_optional_columns_may_be_absent():
    out = enforce_input_schema(pd.DataFrame({"a": [1]}), schema(col("long", "a"), col("string", "b", required=False)))
    assert list(out.columns) == ["a"]


@pytest.mark.parametrize(
    "kind, values, dtype",
    [("double", [1, 2], np.float64), ("float", [1.5], np.float32), ("long", [1.0, 2.0], np.int64),
     ("integer", [7], np.int32), ("double", [True], np.float64), ("double", ["2.5"], np.float64),
     ("long", ["12"], np.int64), ("boolean", [True, False], np.bool_)],
)
def test_safe_widening_is_allowed(kind, values, dtype):
    out = enforce_input_schema(pd.DataFrame({"a": values}), schema(col(kind, "a")))
    assert out["a"].dtype == dtype


@pytest.mark.parametrize(
    "kind, values, code",
    [("double", ["a"], "BAD_REQUEST"), ("long", [2.5], "BAD_REQUEST"),
     ("integer", [2**31], "BAD_REQUEST"), ("long", [10**30], "BAD_REQUEST"),
     ("long", [None], "BAD_REQUEST"), ("boolean", [1], "BAD_REQUEST"), ("long", ["x"], "BAD_REQUEST")],
)
def test_unsafe_conversions_are_refused_naming_the_column(kind, values, code):
    """MLflow 3.17 answers BAD_REQUEST for every scalar conversion it refuses (the differential corpus)."""
    message = refused(pd.DataFrame({"col_a": pd.Series(values, dtype=object)}), schema(col(kind, "col_a")), code)
    assert "col_a" in message


@pytest.mark.parametrize("values", [[7, 1.5, True, "s"], [1.5, 2.5]])
def test_string_columns_pass_values_through_as_mlflow_does(values):
    """MLflow 3.17 scores a number sent for a string column, handing it to the model unconverted."""
    out = enforce_input_schema(pd.DataFrame({"s": values}), schema(col("string", "s")))
    assert out["s"].dtype == object and out["s"].tolist() == values


def test_base64_with_line_breaks_is_decoded():
    """What the `base64` tool writes (a line break every 76 characters) decodes as in MLflow."""
    wrapped = base64.encodebytes(bytes(range(256)) * 2).decode()
    assert "\n" in wrapped.strip()
    out = enforce_input_schema(pd.DataFrame({"b": [wrapped]}), schema(col("binary", "b")))
    assert out["b"][0] == bytes(range(256)) * 2


def test_binary_columns_are_base64_decoded_and_url_safe_refused():
    out = enforce_input_schema(pd.DataFrame({"b": [base64.b64encode(b"\xff\xfe").decode()]}), schema(col("binary", "b")))
    assert out["b"][0] == b"\xff\xfe"
    refused(pd.DataFrame({"b": ["__8-"]}), schema(col("binary", "b")), "BAD_REQUEST")


def test_datetimes_parse_iso_and_refuse_garbage_and_timezones():
    out = enforce_input_schema(pd.DataFrame({"t": ["2024-01-02T03:04:05"]}), schema(col("datetime", "t")))
    assert out["t"][0] == pd.Timestamp("2024-01-02T03:04:05")
    assert "t" in refused(pd.DataFrame({"t": ["yesterday"]}), schema(col("datetime", "t")), "BAD_REQUEST")
    refused(pd.DataFrame({"t": ["2024-01-02T03:04:05+02:00"]}), schema(col("datetime", "t")), "INVALID_PARAMETER_VALUE")  # as MLflow 3.17


def test_nested_array_object_map_and_any():
    spec = schema(
        col("array", "tags", items={"type": "string"}),
        col("object", "obj", properties={"x": {"type": "long", "required": True}, "y": {"type": "string", "required": False}}),
        col("map", "m", values={"type": "double"}),
        col("any", "anything"),
    )
    frame = pd.DataFrame({"tags": [["a", "b"]], "obj": [{"x": 1}], "m": [{"k": 1}], "anything": [object]})
    out = enforce_input_schema(frame, spec)
    assert out["tags"][0] == ["a", "b"] and out["obj"][0] == {"x": 1} and out["m"][0] == {"k": 1.0}
    bad = pd.DataFrame({"tags": [["a", 1]], "obj": [{"x": 1}], "m": [{"k": 1}], "anything": [1]})
    assert "tags" in refused(bad, spec, "INVALID_PARAMETER_VALUE")
    bad_obj = frame.assign(obj=[{"x": 1, "z": 2}])
    assert "unexpected properties ['z']" in refused(bad_obj, spec, "INVALID_PARAMETER_VALUE")


def test_dict_input_becomes_a_frame_and_rows_are_refused():
    out = enforce_input_schema({"a": [1, 2]}, schema(col("double", "a")))
    assert out["a"].tolist() == [1.0, 2.0]
    refused(np.array([[1.0]]), schema(col("double", "a")), "INVALID_PARAMETER_VALUE")


def test_unnamed_columns_are_taken_by_position():
    out = enforce_input_schema(pd.DataFrame([["x"]]), schema({"type": "string", "required": True}))
    assert out.iloc[0, 0] == "x"


# --- tensors ---------------------------------------------------------------------------

def tensor(dtype, shape, name=None):
    spec = {"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}
    return {**spec, "name": name} if name else spec


def test_tensor_is_cast_and_shape_checked():
    out = enforce_input_schema(np.array([[1, 2, 3, 4]]), schema(tensor("float32", [-1, 4])))
    assert out.dtype == np.float32
    assert "does not match expected shape (-1, 4)" in refused(np.array([[1, 2, 3]]), schema(tensor("float32", [-1, 4])),
                                                              "INVALID_PARAMETER_VALUE")


def test_tensor_refuses_fractional_to_int_and_accepts_integral():
    assert enforce_input_schema(np.array([1.0, 2.0]), schema(tensor("int64", [-1]))).dtype == np.int64
    for value in (1.5, np.nan, np.inf, 2.0**70):  # BAD_REQUEST, as MLflow's refusals of such values
        refused(np.array([value]), schema(tensor("int64", [-1])), "BAD_REQUEST")
    refused(np.array(["a"]), schema(tensor("float64", [-1])), "BAD_REQUEST")


def test_dataframe_input_for_a_tensor_signature_is_its_values():
    out = enforce_input_schema(pd.DataFrame({"p": [1.0], "q": [2.0]}), schema(tensor("float64", [-1, 2])))
    assert out.tolist() == [[1.0, 2.0]]


def test_named_tensors_are_checked_per_name():
    spec = schema(tensor("float64", [-1, 2], "x"), tensor("int64", [-1], "y"))
    out = enforce_input_schema({"x": np.array([[1, 2]]), "y": np.array([3])}, spec)
    assert out["x"].dtype == np.float64 and out["y"].dtype == np.int64
    assert "['y']" in refused({"x": np.array([[1, 2]])}, spec, "INVALID_PARAMETER_VALUE")


# --- params ----------------------------------------------------------------------------

PARAMS = ModelSignature.from_mlmodel({"params": json.dumps([
    {"name": "day", "type": "string", "default": "Monday", "shape": None},
    {"name": "temperature", "type": "double", "default": 0.5, "shape": None},
    {"name": "ids", "type": "long", "default": [1], "shape": [-1]},
])}).params


def test_params_defaults_are_filled_and_unknown_ignored():
    assert enforce_params({"temperature": 1, "zzz": 3}, PARAMS) == {"day": "Monday", "temperature": 1.0, "ids": [1]}


def test_params_wrong_type_or_shape_are_refused_naming_them():
    for bad in ({"day": 5}, {"temperature": "hot"}, {"ids": 3}, {"ids": [1.5]}):
        with pytest.raises(ScoringError) as raised:
            enforce_params(bad, PARAMS)
        assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
        assert next(iter(bad)) in raised.value.message


def test_params_null_value_is_passed_through():
    assert enforce_params({"day": None}, PARAMS)["day"] is None


def test_params_without_schema_are_dropped():
    assert enforce_params({"a": 1}, None) is None
