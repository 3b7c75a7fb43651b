"""The generated request corpus: every signature column type (and tensor specs) × every JSON
format and CSV × every kind of value, plus requests whose shape is wrong.

A :class:`Case` is one request; its ``tags`` (model, format, column, value kind) are what the
deliberate differences in ``deliberate.py`` match on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

JSON = "application/json"
CSV = "text/csv"
COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string", "binary", "datetime")
GOOD = {"double": 1.5, "float": 2.5, "long": 3, "integer": 4, "boolean": True, "string": "s",
        "binary": "aGk=", "datetime": "2024-01-02T03:04:05"}
MISSING = object()  # a value kind with no CSV spelling


@dataclass(frozen=True)
class ValueKind:
    """One kind of value: as JSON, and as CSV cell text (MISSING: not sent as CSV)."""

    name: str
    json: Any
    csv: Any = MISSING


VALUE_KINDS = [
    ValueKind("null", None, ""),
    ValueKind("integral", 7, "7"),
    ValueKind("zero", 0, "0"),
    ValueKind("negative", -3, "-3"),
    ValueKind("fraction", 1.5, "1.5"),
    ValueKind("exponent", 1e3, "1e3"),
    ValueKind("beyond_int32", 2**40, str(2**40)),
    ValueKind("beyond_int64", 2**70, str(2**70)),
    ValueKind("text", "abc", "abc"),
    ValueKind("numeric_text", "5", '"5"'),
    ValueKind("fraction_text", "1.5"),
    ValueKind("empty_text", "", '""'),
    ValueKind("true", True, "True"),
    ValueKind("false", False, "false"),
    ValueKind("nested_list", [1]),
    ValueKind("object", {"a": 1}),
    ValueKind("nan", float("nan"), "NaN"),
    ValueKind("infinity", float("inf"), "inf"),
    ValueKind("minus_infinity", float("-inf"), "-inf"),
    ValueKind("base64", "aGVsbG8gd29ybGQ=", "aGVsbG8gd29ybGQ="),
    ValueKind("base64_newlines", "aGVsbG8g\nd29ybGQ=\n", '"aGVsbG8g\nd29ybGQ=\n"'),
    ValueKind("base64_urlsafe", "-_-_", "-_-_"),
    ValueKind("date", "2024-01-02", "2024-01-02"),
    ValueKind("datetime_tz", "2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05+02:00"),
]


@dataclass(frozen=True)
class Case:
    """One request: its id, the model it is sent to, its Content-Type and body."""

    id: str
    model: str
    content_type: str
    body: bytes
    tags: dict = field(default_factory=dict, compare=False)


def _json(value: Any) -> bytes:
    """JSON as Python's json.dumps (and requests' ``json=``) write it: NaN and Infinity as literals."""
    return json.dumps(value).encode()


# --- one model per column type: each value kind in each format -------------------------

def _single_column_bodies(value: Any) -> dict[str, Any]:
    return {
        "split": {"dataframe_split": {"columns": ["x"], "data": [[value]]}},
        "records": {"dataframe_records": [{"x": value}]},
        "instances": {"instances": [{"x": value}]},
        "inputs": {"inputs": {"x": [value]}},
    }


def _csv(cells: dict) -> bytes:
    return (",".join(cells) + "\n" + ",".join(cells.values()) + "\n").encode()


def column_cases() -> Iterator[Case]:
    """Every column type × every value kind × every format."""
    for column in COLUMN_TYPES:
        for kind in [ValueKind("good", GOOD[column], str(GOOD[column])), *VALUE_KINDS]:
            tags = {"model": column, "column": column, "kind": kind.name}
            for format_name, body in _single_column_bodies(kind.json).items():
                yield Case(f"{column}/{kind.name}/{format_name}", column, JSON, _json(body),
                           {**tags, "format": format_name})
            if kind.csv is not MISSING:
                yield Case(f"{column}/{kind.name}/csv", column, CSV, _csv({"x": kind.csv}), {**tags, "format": "csv"})


# --- the ``table`` model (x_double, x_long, x_string): requests of the wrong shape -----------

GOOD_ROW = {"x_double": 1.5, "x_long": 3, "x_string": "s"}
GOOD_SPLIT = {"columns": list(GOOD_ROW), "data": [list(GOOD_ROW.values())]}


def _good_csv_cells() -> dict[str, str]:
    return {name: str(value) for name, value in GOOD_ROW.items()}


SHAPE_BODIES: dict[str, Any] = {
    "split_index": {"dataframe_split": {**GOOD_SPLIT, "index": [5]}},
    "split_index_wrong_length": {"dataframe_split": {**GOOD_SPLIT, "index": [5, 6]}},
    "split_extra_key": {"dataframe_split": {**GOOD_SPLIT, "orient": "split"}},
    "split_no_columns": {"dataframe_split": {"data": GOOD_SPLIT["data"]}},
    "split_no_data": {"dataframe_split": {"columns": GOOD_SPLIT["columns"]}},
    "split_data_not_list": {"dataframe_split": {"columns": GOOD_SPLIT["columns"], "data": 1}},
    "split_not_object": {"dataframe_split": [1, 2]},
    "split_empty_data": {"dataframe_split": {"columns": GOOD_SPLIT["columns"], "data": []}},
    "split_wrong_width": {"dataframe_split": {"columns": GOOD_SPLIT["columns"], "data": [[1.5, 2]]}},
    "split_ragged": {"dataframe_split": {"columns": GOOD_SPLIT["columns"], "data": [GOOD_SPLIT["data"][0], [1.5]]}},
    "split_flat_data": {"dataframe_split": {"columns": GOOD_SPLIT["columns"], "data": GOOD_SPLIT["data"][0]}},
    "split_duplicate_columns": {"dataframe_split": {"columns": [*GOOD_SPLIT["columns"], "x_double"],
                                                    "data": [[*GOOD_SPLIT["data"][0], 1.5]]}},
    "split_missing_column": {"dataframe_split": {"columns": GOOD_SPLIT["columns"][1:], "data": [GOOD_SPLIT["data"][0][1:]]}},
    "split_extra_column": {"dataframe_split": {"columns": [*GOOD_SPLIT["columns"], "y"],
                                               "data": [[*GOOD_SPLIT["data"][0], 1]]}},
    "split_two_rows": {"dataframe_split": {**GOOD_SPLIT, "data": GOOD_SPLIT["data"] * 2}},
    "records_empty": {"dataframe_records": []},
    "records_not_list": {"dataframe_records": GOOD_ROW},
    "records_of_lists": {"dataframe_records": [list(GOOD_ROW.values())]},
    "records_missing_key": {"dataframe_records": [GOOD_ROW, {k: v for k, v in GOOD_ROW.items() if k != "x_long"}]},
    "records_scalar": {"dataframe_records": 1},
    "instances_rows": {"instances": [list(GOOD_ROW.values())]},
    "instances_string": {"instances": "abc"},
    "instances_empty": {"instances": []},
    "instances_scalars": {"instances": [1, 2]},
    "inputs_string": {"inputs": "abc"},
    "inputs_number": {"inputs": 1},
    "inputs_scalars_object": {"inputs": GOOD_ROW},
    "inputs_rows": {"inputs": [list(GOOD_ROW.values())]},
    "inputs_ragged": {"inputs": {**{k: [v] for k, v in GOOD_ROW.items()}, "x_double": [1.5, 2.5]}},
    "inputs_empty_object": {"inputs": {}},
    "inputs_records": {"inputs": [GOOD_ROW]},
    "two_format_keys": {"dataframe_split": GOOD_SPLIT, "instances": [GOOD_ROW]},
    "no_format_key": {"foo": 1},
    "empty_object": {},
    "top_level_list": [GOOD_ROW],
    "top_level_string": "abc",
    "top_level_null": None,
    "messages_and_split": {"messages": [{"role": "user", "content": "hi"}], "dataframe_split": GOOD_SPLIT},
    "prompt_and_inputs": {"prompt": "hi", "inputs": {k: [v] for k, v in GOOD_ROW.items()}},
    "params_without_schema": {"dataframe_split": GOOD_SPLIT, "params": {"x": 1}},
    "params_not_object": {"dataframe_split": GOOD_SPLIT, "params": [1]},
    "params_null": {"dataframe_split": GOOD_SPLIT, "params": None},
    "split_null": {"dataframe_split": None},
}

CSV_SHAPE_BODIES: dict[str, bytes] = {
    "csv_empty": b"",
    "csv_header_only": _csv(_good_csv_cells()).split(b"\n")[0] + b"\n",
    "csv_missing_column": b"x_double\n1.5\n",
    "csv_extra_column": _csv({**_good_csv_cells(), "y": "1"}),
    "csv_ragged_row": _csv(_good_csv_cells()) + b"1.5,2.5\n",
    "csv_long_row": _csv(_good_csv_cells()) + b"1,2,3,4,5\n",
    "csv_duplicate_columns": _csv(_good_csv_cells()).replace(b"x_string\n", b"x_double\n"),
    "csv_two_rows": _csv(_good_csv_cells()) + _csv(_good_csv_cells()).split(b"\n")[1] + b"\n",
    "csv_no_trailing_newline": _csv(_good_csv_cells()).rstrip(b"\n"),
    "csv_crlf": _csv(_good_csv_cells()).replace(b"\n", b"\r\n"),
    "csv_bom": b"\xef\xbb\xbf" + _csv(_good_csv_cells()),
    "csv_binary_garbage": b"\x00\x01\x02",
    "csv_json_body": _json({"dataframe_records": [GOOD_ROW]}),
}

RAW_JSON_BODIES: dict[str, bytes] = {
    "json_invalid": b'{"dataframe_split": ',
    "json_empty": b"",
    "json_nan_top": b"NaN",
    "json_single_quotes": b"{'inputs': 1}",
    "json_trailing_comma": b'{"dataframe_records": [{"x_double": 1.5},]}',
    "json_bom": b"\xef\xbb\xbf" + _json({"dataframe_split": GOOD_SPLIT}),
    "json_utf16": json.dumps({"dataframe_split": GOOD_SPLIT}).encode("utf-16"),
    "json_nan_lowercase": b'{"dataframe_records": [{"x_double": nan}]}',
    "json_duplicate_keys": b'{"inputs": 1, "inputs": {"x_double": [1.5]}}',
}


def shape_cases() -> Iterator[Case]:
    """Requests whose structure (not one value) is what is tested, on the ``table`` model."""
    for name, body in SHAPE_BODIES.items():
        yield Case(f"table/{name}", "table", JSON, _json(body), {"model": "table", "shape": name})
    for name, raw in RAW_JSON_BODIES.items():
        yield Case(f"table/{name}", "table", JSON, raw, {"model": "table", "shape": name})
    for name, raw in CSV_SHAPE_BODIES.items():
        yield Case(f"table/{name}", "table", CSV, raw, {"model": "table", "shape": name})


# --- tensor-signature models --------------------------------------------------------------

TENSOR_VALUES = {kind.name: kind for kind in VALUE_KINDS}
TENSOR_SHAPES: dict[str, Any] = {
    "rows": [[1.0, 2.0], [3.0, 4.0]],
    "one_row": [[1.0, 2.0]],
    "flat": [1.0, 2.0],
    "wide": [[1.0, 2.0, 3.0]],
    "deep": [[[1.0, 2.0]]],
    "empty": [],
    "ragged": [[1.0, 2.0], [3.0]],
    "scalar": 1.0,
    "string": "abc",
}


def tensor_cases() -> Iterator[Case]:
    """The (-1, 2) float32 tensor: each value kind in a row, then each shape, in every format."""
    bodies: dict[str, Any] = {f"value/{name}": [[kind.json, 2.0]] for name, kind in TENSOR_VALUES.items()}
    bodies.update({f"shape/{name}": value for name, value in TENSOR_SHAPES.items()})
    for name, value in bodies.items():
        tags = {"model": "tensor", "kind": name}
        for key in ("instances", "inputs"):
            yield Case(f"tensor/{name}/{key}", "tensor", JSON, _json({key: value}), {**tags, "format": key})
        if isinstance(value, list) and all(isinstance(row, list) for row in value):
            yield Case(f"tensor/{name}/split", "tensor", JSON, _json({"dataframe_split": {"data": value}}),
                       {**tags, "format": "split"})
    for name, kind in TENSOR_VALUES.items():
        if kind.csv is not MISSING:
            yield Case(f"tensor/value/{name}/csv", "tensor", CSV, f"a,b\n{kind.csv},2.0\n".encode(),
                       {"model": "tensor", "kind": f"value/{name}", "format": "csv"})


def named_tensor_cases() -> Iterator[Case]:
    """Named tensors ``a`` (float64) and ``b`` (int64): each value kind in ``b``, in every format."""
    for kind in [ValueKind("good", 3, "3"), *VALUE_KINDS]:
        row = {"a": 1.5, "b": kind.json}
        tags = {"model": "named_tensors", "kind": kind.name}
        bodies = {
            "inputs": {"inputs": {"a": [1.5], "b": [kind.json]}},
            "instances": {"instances": [row]},
            "records": {"dataframe_records": [row]},
            "split": {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, kind.json]]}},
        }
        for format_name, body in bodies.items():
            yield Case(f"named_tensors/{kind.name}/{format_name}", "named_tensors", JSON, _json(body),
                       {**tags, "format": format_name})
        if kind.csv is not MISSING:
            yield Case(f"named_tensors/{kind.name}/csv", "named_tensors", CSV, f"a,b\n1.5,{kind.csv}\n".encode(),
                       {**tags, "format": "csv"})
    yield Case("named_tensors/shape/missing_b", "named_tensors", JSON, _json({"inputs": {"a": [1.5]}}),
               {"model": "named_tensors", "shape": "missing_b"})
    yield Case("named_tensors/shape/instances_rows", "named_tensors", JSON, _json({"instances": [[1.5, 3]]}),
               {"model": "named_tensors", "shape": "instances_rows"})
    yield Case("named_tensors/shape/inputs_scalars", "named_tensors", JSON, _json({"inputs": {"a": 1.5, "b": 3}}),
               {"model": "named_tensors", "shape": "inputs_scalars"})




# --- the fixture models (tests/fixtures/mlflow-models) --------------------------------------

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
DAY = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0]]}}
FIXTURE_BODIES: dict[str, dict[str, Any]] = {
    "iris": {
        "split": {"dataframe_split": {"columns": IRIS, "data": [IRIS_ROW]}},
        "records": {"dataframe_records": [dict(zip(IRIS, IRIS_ROW))]},
        "instances_rows": {"instances": [IRIS_ROW]},
        "inputs_rows": {"inputs": [IRIS_ROW]},
        "inputs_scalars": {"inputs": dict(zip(IRIS, IRIS_ROW))},
        "null_value": {"dataframe_split": {"columns": IRIS, "data": [[None, 3.5, 1.4, 0.2]]}},
        "nan_value": {"dataframe_split": {"columns": IRIS, "data": [[float("nan"), 3.5, 1.4, 0.2]]}},
        "empty_rows": {"dataframe_split": {"columns": IRIS, "data": []}},
        "llm_key": {"messages": [{"role": "user", "content": "hi"}]},
    },
    "day_models": {
        **{f"params_{name}": dict(DAY, params=params) for name, params in {
            "tuesday": {"day_of_week": "Tuesday"}, "int": {"day_of_week": 5}, "null": {"day_of_week": None},
            "list": ["x"], "string": "Tuesday", "list_value": {"day_of_week": ["Tuesday"]},
            "bool": {"day_of_week": True}, "model_raises": {"day_of_week": "Sunday"}, "unknown": {"foo": 1},
        }.items()},
        "default_param": DAY,
        "empty_rows": {"dataframe_split": {"columns": ["a", "b", "c"], "data": []}},
    },
}


def fixture_cases() -> Iterator[Case]:
    """Hand-written requests to the MLflow-written fixtures (a skops estimator, a pyfunc with params)."""
    for model, bodies in FIXTURE_BODIES.items():
        for name, body in bodies.items():
            yield Case(f"{model}/{name}", model, JSON, _json(body), {"model": model, "shape": name})


def all_cases() -> list[Case]:
    """The whole corpus."""
    return [*column_cases(), *shape_cases(), *tensor_cases(), *named_tensor_cases(), *fixture_cases()]
