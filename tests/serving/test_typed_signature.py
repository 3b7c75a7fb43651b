"""Signature enforcement by the app, for every column type, on a model saved with our save API."""
from __future__ import annotations

import base64
import json
import textwrap

import pytest

from flavors.python_function import save_model
from flavors.signature import ModelSignature

from ..conftest import InProcessServer

ECHO_TYPES = textwrap.dedent('''
    from flavors.python_model import PythonModel, set_model


    class EchoTypes(PythonModel):
        """Answers with the dtypes and values the model received."""

        def predict(self, context, model_input, params=None):
            return {"dtypes": {c: str(t) for c, t in model_input.dtypes.items()},
                    "rows": model_input.to_dict(orient="records"), "params": params}


    set_model(EchoTypes())
''')

INPUTS = [
    {"type": "long", "name": "l", "required": True},
    {"type": "integer", "name": "i", "required": True},
    {"type": "float", "name": "f", "required": True},
    {"type": "double", "name": "d", "required": True},
    {"type": "boolean", "name": "b", "required": True},
    {"type": "string", "name": "s", "required": True},
    {"type": "binary", "name": "bin", "required": True},
    {"type": "datetime", "name": "t", "required": True},
    {"type": "array", "items": {"type": "long"}, "name": "arr", "required": False},
    {"type": "double", "name": "opt", "required": False},
]
PARAMS = [
    {"name": "k", "type": "long", "default": 3, "shape": None},
    {"name": "weights", "type": "double", "default": [1.0], "shape": [-1]},
    {"name": "flag", "type": "boolean", "default": False, "shape": None},
]
ROW = {"l": 1, "i": 2, "f": 1.5, "d": 2.5, "b": True, "s": "007", "bin": base64.b64encode(b"\x00\xff").decode(),
       "t": "2024-05-06T07:08:09", "arr": [1, 2]}


@pytest.fixture(scope="module")
def typed_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("typed")
    (root / "echo_types.py").write_text(ECHO_TYPES)
    signature = ModelSignature.from_mlmodel({"inputs": json.dumps(INPUTS), "params": json.dumps(PARAMS)})
    save_model(root / "model", python_model=str(root / "echo_types.py"), signature=signature)
    return InProcessServer(root / "model")


def records(server, *rows, **extra):
    return server.post({"dataframe_records": list(rows), **extra})


def test_every_type_is_converted_for_the_model(typed_app):
    body = records(typed_app, ROW).json()["predictions"]
    assert body["dtypes"] == {"l": "int64", "i": "int32", "f": "float32", "d": "float64", "b": "bool",
                              "s": "str", "bin": "object", "t": "datetime64[ns]", "arr": "object"}
    assert body["rows"] == [{"l": 1, "i": 2, "f": 1.5, "d": 2.5, "b": True, "s": "007", "bin": "AP8=",
                             "t": "2024-05-06T07:08:09", "arr": [1, 2]}]


def test_optional_column_is_kept_when_sent_and_extra_columns_dropped(typed_app):
    body = records(typed_app, dict(ROW, opt=4, extra="x")).json()["predictions"]
    assert body["dtypes"]["opt"] == "float64" and "extra" not in body["dtypes"]
    assert list(body["dtypes"]) == [spec["name"] for spec in INPUTS]


def test_params_defaults_and_conversions(typed_app):
    assert records(typed_app, ROW).json()["predictions"]["params"] == {"k": 3, "weights": [1.0], "flag": False}
    sent = {"k": 5, "weights": [1, 2.5], "flag": True, "unknown": 1}
    assert records(typed_app, ROW, params=sent).json()["predictions"]["params"] == {
        "k": 5, "weights": [1.0, 2.5], "flag": True}


@pytest.mark.parametrize(
    "params", [{"k": 2.5}, {"k": "five"}, {"weights": 1.0}, {"weights": ["a"]}, {"flag": "yes"}],
    ids=["fractional_long", "string_long", "scalar_for_list", "string_in_list", "string_bool"],
)
def test_params_that_cannot_be_converted_are_invalid_parameter(typed_app, params):
    response = records(typed_app, ROW, params=params)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert next(iter(params)) in response.json()["message"]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"l": 2.5}, "BAD_REQUEST"),
        ({"l": 2**63}, "BAD_REQUEST"),
        ({"i": 2**31}, "BAD_REQUEST"),
        ({"d": "abc"}, "BAD_REQUEST"),
        ({"b": 1}, "BAD_REQUEST"),
        ({"bin": "not base64!"}, "BAD_REQUEST"),
        ({"bin": "_-8="}, "BAD_REQUEST"),
        ({"t": "not a date"}, "BAD_REQUEST"),
        ({"t": "2024-05-06T07:08:09+02:00"}, "INVALID_PARAMETER_VALUE"),
        ({"arr": [1, "x"]}, "INVALID_PARAMETER_VALUE"),
        ({"arr": 3}, "INVALID_PARAMETER_VALUE"),
    ],
    ids=["fractional_long", "beyond_int64", "beyond_int32", "text_double", "int_bool",
         "bad_base64", "urlsafe_base64", "bad_datetime", "tz_datetime", "bad_array_item", "scalar_array"],
)
def test_unsafe_values_are_refused_naming_the_column(typed_app, change, code):
    response = records(typed_app, dict(ROW, **change))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == code
    assert f"column {next(iter(change))}" in body["message"]


def test_missing_required_and_absent_optional(typed_app):
    row = {k: v for k, v in ROW.items() if k not in ("l", "s")}
    response = records(typed_app, row)
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "['l', 's']" in response.json()["message"]


def test_csv_is_parsed_with_the_signature_types(typed_app):
    csv = "l,i,f,d,b,s,bin,t\n1,2,1.5,2.5,True,007,AP8=,2024-05-06T07:08:09\n"
    body = typed_app.post(csv, "text/csv").json()["predictions"]
    assert body["rows"] == [{"l": 1, "i": 2, "f": 1.5, "d": 2.5, "b": True, "s": "007", "bin": "AP8=",
                             "t": "2024-05-06T07:08:09"}]


def test_csv_fractional_value_for_a_long_column_is_refused(typed_app):
    csv = "l,i,f,d,b,s,bin,t\n2.5,2,1.5,2.5,True,007,AP8=,2024-05-06T07:08:09\n"
    response = typed_app.post(csv, "text/csv")
    assert response.status_code == 400 and response.json()["error_code"] == "BAD_REQUEST"
