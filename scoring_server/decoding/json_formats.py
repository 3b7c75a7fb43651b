"""The JSON request formats of the MLflow scoring protocol.

A body is an object with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (plus optional ``params``), or a raw LLM-style payload with a
``messages``, ``prompt`` or ``input`` key, whose keys are split into data and params by the
model's param schema.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from flavors.signature import ModelSignature, ScalarType, Schema

from ..content_types import PROTOCOL_CHANGE_INFO
from ..errors import ScoringError, invalid_input, invalid_parameter
from .limits import DecodeLimits, check_decoded_bytes, check_table, row_width, scalars
from .request import LLM_FORMAT, DecodedRequest

DATAFRAME_SPLIT = "dataframe_split"
DATAFRAME_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
FORMAT_KEYS = (DATAFRAME_SPLIT, DATAFRAME_RECORDS, INSTANCES, INPUTS)
LLM_KEYS = ("messages", "prompt", "input")
PARAMS_KEY = "params"
_FORMAT_KEY_SET = frozenset(FORMAT_KEYS)
_LLM_KEY_SET = frozenset(LLM_KEYS)
_SPLIT_KEYS = frozenset(("data", "columns", "index"))

REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)


def decode_json_payload(payload: Any, signature: ModelSignature | None) -> DecodedRequest:
    """Decode a parsed JSON body into model input, params and the answer style."""
    if not isinstance(payload, dict):
        received = "Received a list" if isinstance(payload, list) else f"Received unexpected input type '{type(payload).__name__}'"
        raise invalid_input(f"{REQUIRED_INPUT_FORMAT}. {received}.")
    if any(key in payload for key in LLM_KEYS):
        return _split_llm_payload(payload, signature)
    keys = [key for key in payload if key in FORMAT_KEYS]
    if len(keys) != 1:
        raise ScoringError(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {keys}. {PROTOCOL_CHANGE_INFO}"
        )
    value = payload[keys[0]]
    if keys[0] == DATAFRAME_SPLIT:
        data = decode_dataframe_split(value)
    elif keys[0] == DATAFRAME_RECORDS:
        data = decode_dataframe_records(value)
    else:
        data = decode_tensor_input(value, signature.inputs if signature else None)
    return DecodedRequest(data, payload.get(PARAMS_KEY), keys[0])


def check_input_size(payload: Any, limits: DecodeLimits, input_schema: Schema | None = None) -> None:
    """Refuse a payload over ``limits`` from the lengths of its lists, before anything is built
    from it. Payloads that are not one of the four formats are left to decoding to word."""
    if type(payload) is not dict:
        return
    key = None
    for name in payload:
        if name in _FORMAT_KEY_SET:
            if key is not None:
                return
            key = name
        elif name in _LLM_KEY_SET:
            return
    value = payload.get(key)
    if key == DATAFRAME_SPLIT:
        data = value.get("data") if type(value) is dict else None
        if type(data) is list:
            columns = value.get("columns")
            width = row_width(data)
            check_table(len(data), max(width, len(columns)) if type(columns) is list else width, limits)
    elif key == DATAFRAME_RECORDS:
        if type(value) is list:
            check_table(len(value), row_width(value), limits)
    elif key is not None:
        _check_tensor_size(value, limits, input_schema)


def _check_tensor_size(value: Any, limits: DecodeLimits, input_schema: Schema | None) -> None:
    """``instances``/``inputs``: rows, scalars, and the fixed-width array a string tensor becomes."""
    if type(value) is dict:
        columns = list(value.values())
        rows = max((len(column) if type(column) is list else 1 for column in columns), default=0)
    elif type(value) is list:
        columns, rows = value, len(value)
    else:
        return
    count, longest = scalars(columns)
    check_table(rows, 0, limits, cells=count)
    as_frame = input_schema is not None and not input_schema.is_tensor_spec and input_schema.has_input_names
    if longest and not as_frame:  # numpy stores every string as wide as the longest, 4 bytes a character
        check_decoded_bytes(count * longest * 4, limits,
                            f"A tensor of {count:,} strings (the longest {longest:,} characters, which sets the "
                            "width of every element)")


def decode_dataframe_split(value: Any) -> pd.DataFrame:
    """``{"columns": [...], "data": [[...], ...], "index": [...]?}`` to a DataFrame."""
    if isinstance(value, dict) and not ("data" in value and value.keys() <= _SPLIT_KEYS):
        raise invalid_input("Dataframe split format must have 'data' field and optionally 'columns' and 'index' "
                            f"fields. Got {{{', '.join(map(repr, sorted(value)))}}}.")
    if isinstance(value, dict) and isinstance(value["data"], list):
        try:
            return pd.DataFrame(data=value.get("data"), columns=value.get("columns"), index=value.get("index"))
        except (ValueError, TypeError) as exc:
            raise invalid_input(f"Failed to read 'dataframe_split' as a DataFrame: {exc}") from None
    raise invalid_input(
        "'dataframe_split' must be an object with a 'data' list of rows and an optional 'columns' list."
    )


def decode_dataframe_records(value: Any) -> pd.DataFrame:
    """``[{"col": value, ...}, ...]`` to a DataFrame. Rows that are lists (as MLflow, which hands
    them to pandas) get numbered columns, which a column signature then refuses by name."""
    if not isinstance(value, list):
        raise invalid_input("'dataframe_records' must be a list of objects, one per row.")
    try:
        return pd.DataFrame(data=value)
    except (ValueError, TypeError) as exc:
        raise invalid_input(f"Failed to read 'dataframe_records' as a DataFrame: {exc}") from None


def decode_tensor_input(value: Any, input_schema: Schema | None = None) -> Any:
    """TF-serving ``instances``/``inputs``: rows, or a dict of columns, as numpy arrays.

    For a column-based signature the columns become a DataFrame (a list of plain rows
    cannot name its columns and is refused); otherwise arrays are built as the client sent
    them and the signature step casts them.
    """
    if isinstance(value, str) and input_schema is not None:  # MLflow: BAD_REQUEST, whatever the signature
        raise invalid_input(f"Failed to convert data {value!r} to the model signature's inputs: send rows or "
                            "columns, not a bare string.")
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        value = _rows_to_columns(value)
    if input_schema is not None and not input_schema.is_tensor_spec and input_schema.has_input_names:
        return _columns_frame(value, input_schema)
    try:
        if isinstance(value, dict):
            return {name: np.asarray(column) for name, column in value.items()}
        return np.asarray(value)
    except ValueError as exc:
        raise invalid_input(f"Failed to parse data as TF serving input: {exc}") from None


def _rows_to_columns(rows: list[dict]) -> dict[str, list]:
    columns: dict[str, list] = defaultdict(list)
    for row in rows:
        for name, value in row.items():
            columns[name].append(value)
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1:
        raise invalid_input("Failed to parse data as TF serving input: every instance must have the same keys.")
    return dict(columns)


def _columns_frame(value: Any, input_schema: Schema) -> pd.DataFrame:
    names = input_schema.input_names()
    if isinstance(value, list) and len(names) == 1:
        value = {names[0]: value}
    if not isinstance(value, dict):
        refuse = invalid_input if _unconvertible_rows(value) else invalid_parameter
        raise refuse(
            f"This model has a column-based signature with inputs {names}: send 'inputs' as an object of "
            "columns or 'instances' as a list of objects, not a list of unnamed rows."
        )
    columns = {name: column if isinstance(column, list) else [column] for name, column in value.items()}
    if len({len(column) for column in columns.values()}) > 1:
        raise invalid_parameter("Failed to enforce schema: all input columns must have the same length.")
    text_columns = {spec.name for spec in input_schema.specs if isinstance(spec.type, ScalarType)
                    and spec.type.name == "string"}
    _refuse_lists_in_scalar_columns(columns, input_schema, text_columns)
    return pd.DataFrame({name: _as_text(column) if name in text_columns else column
                         for name, column in columns.items()})


def _refuse_lists_in_scalar_columns(columns: dict[str, list], input_schema: Schema, text_columns: set) -> None:
    """A list where a scalar column takes one value a row: MLflow builds a two-dimensional array of
    the column and its schema check refuses it (INVALID_PARAMETER_VALUE), before any conversion."""
    for spec in input_schema.specs:
        column = columns.get(spec.name)
        if (column is not None and isinstance(spec.type, ScalarType) and spec.name not in text_columns
                and any(type(value) is list for value in column)):
            raise invalid_parameter(f"Failed to enforce schema: column {spec.name} of type {spec.type} takes one "
                                    "value per row, and holds lists.")


def _unconvertible_rows(value: Any) -> bool:
    """Unnamed rows MLflow cannot even make an array of numbers of (mixed or ragged rows): its
    conversion fails (BAD_REQUEST); numeric rows convert, then miss the signature's columns by name
    (INVALID_PARAMETER_VALUE)."""
    if not isinstance(value, list) or not any(isinstance(row, list) for row in value):
        return False
    try:
        return np.asarray(value).dtype.kind not in "biuf"
    except ValueError:  # ragged
        return True


def _as_text(column: list) -> list:
    """A string column of ``instances``/``inputs`` as text, as MLflow builds it with numpy's text
    type (7 → '7', true → 'True', [1] → ['1']); a null stays missing rather than becoming 'None'."""
    try:
        return [None if value is None else np.array(value, dtype=str).tolist() for value in column]
    except ValueError as exc:
        raise invalid_input(f"Failed to parse data as TF serving input: {exc}") from None


def _split_llm_payload(payload: dict, signature: ModelSignature | None) -> DecodedRequest:
    param_names = set(signature.params.names()) if signature and signature.params else set()
    data = {key: value for key, value in payload.items() if key not in param_names}
    params = {key: value for key, value in payload.items() if key in param_names}
    return DecodedRequest(data, params or None, LLM_FORMAT)

