"""Column-based input schemas: required columns, order, and per-column types."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flavors.signature import SCALAR_DTYPES, ColSpec, ScalarType, Schema

from ..errors import ScoringError, invalid_input, invalid_parameter
from .values import ConversionError, convert_series

# Scalar types whose numpy dtype alone proves a column needs no conversion (not those held as objects).
_NUMPY_DTYPES = {name: dtype for name, dtype in SCALAR_DTYPES.items() if dtype.kind != "O"}
# The pandas dtype named in conversion errors.
_PANDAS_DTYPE_NAMES = {name: str(dtype) for name, dtype in SCALAR_DTYPES.items()}


def enforce_column_schema(data: Any, schema: Schema) -> pd.DataFrame:
    """Select, order and convert the columns the schema names; extra columns are dropped."""
    frame = _as_frame(data, schema)
    if not schema.has_input_names:
        return _convert_unnamed(frame, schema)
    if frame.columns.has_duplicates:  # frame[name] would be a DataFrame, not a column
        duplicated = sorted({str(name) for name in frame.columns[frame.columns.duplicated()]})
        raise invalid_parameter(f"Failed to enforce schema. Columns named more than once: {duplicated}.")
    missing = [name for name in schema.required_input_names() if name not in frame.columns]
    if missing:
        extra = [c for c in frame.columns if c not in schema.input_names()]
        note = f" Note that there were extra inputs: {extra}." if extra else ""
        raise invalid_parameter(f"Failed to enforce schema. Model is missing inputs {missing}.{note}")
    present = [spec for spec in schema.specs if spec.name in frame.columns]
    selected = frame if list(frame.columns) == [spec.name for spec in present] else frame[[s.name for s in present]]
    if all(_already_typed(dtype, spec) for dtype, spec in zip(selected.dtypes, present)):
        return selected
    return pd.DataFrame({spec.name: _convert_column(frame[spec.name], spec) for spec in present}, index=frame.index)


def _already_typed(dtype: np.dtype, spec: ColSpec) -> bool:
    """Whether a column already holds the spec's type, so conversion can be skipped (numpy reads
    ``None == dtype`` as float64, hence the explicit check: a string column of floats is not typed)."""
    expected = _NUMPY_DTYPES.get(spec.type.name) if isinstance(spec.type, ScalarType) else None
    return expected is not None and expected == dtype


def _as_frame(data: Any, schema: Schema) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, dict):
        try:
            return pd.DataFrame({k: v if isinstance(v, (list, np.ndarray)) else [v] for k, v in data.items()})
        except ValueError as exc:
            raise invalid_input(f"Failed to build a DataFrame from the input columns: {exc}") from None
    if isinstance(data, (list, np.ndarray)) and not schema.has_input_names:
        return pd.DataFrame(data)
    raise invalid_parameter(
        f"This model expects named columns {schema.input_names()}; got {type(data).__name__}. "
        "Send 'dataframe_split', 'dataframe_records', or 'inputs' as an object of columns."
    )


def _convert_unnamed(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    if frame.shape[1] != len(schema.specs):
        raise invalid_parameter(
            f"Failed to enforce schema. The model expects {len(schema.specs)} unnamed column(s), got {frame.shape[1]}."
        )
    converted = {col: _convert_column(frame[col], spec) for col, spec in zip(frame.columns, schema.specs)}
    return pd.DataFrame(converted, index=frame.index)


def _convert_column(column: pd.Series, spec: ColSpec) -> pd.Series:
    try:
        return convert_series(column, spec.type)
    except ConversionError as exc:
        raise _column_error(column, spec, exc) from None


def _column_error(column: pd.Series, spec: ColSpec, exc: ConversionError) -> ScoringError:
    """A 400; BAD_REQUEST for a scalar column, as MLflow answers every scalar conversion it refuses
    (a null in an integer column, a number out of range, text or a fraction sent as CSV);
    INVALID_PARAMETER_VALUE for a value of a kind the type never takes, as MLflow's schema check."""
    label = spec.name if spec.name is not None else column.name
    scalar = isinstance(spec.type, ScalarType)
    target = _PANDAS_DTYPE_NAMES.get(spec.type.name, str(spec.type)) if scalar else spec.type
    if exc.mismatch:
        return invalid_parameter(f"Incompatible input types for column {label} (signature type {spec.type}): {exc}")
    if exc.unsafe:
        return (invalid_input if scalar else invalid_parameter)(
            f"Incompatible input types for column {label}. Can not safely convert {column.dtype} "
            f"to {spec.type}: {exc}"
        )
    return invalid_input(
        f"Data is not compatible with model signature. Failed to convert column {label} to type "
        f"'{target}' (signature type {spec.type}): {exc}"
    )
