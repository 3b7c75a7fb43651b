"""Conversion rules for single values and whole columns, shared by columns, tensors and params.

Safe widening is allowed (bool/int to floating point, int32 to int64, an integral float to
an integer type); anything that would change a value is refused.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from flavors.signature import AnyType, ArrayType, DataType, MapType, ObjectType, ScalarType

_LINE_BREAKS = re.compile(r"[\r\n]")  # what the `base64` tool writes every 76 characters
_INT_BOUNDS = {"integer": np.iinfo(np.int32), "long": np.iinfo(np.int64)}


class ConversionError(ValueError):
    """A value that cannot be safely converted; ``unsafe`` separates narrowing from garbage, and
    ``mismatch`` marks a well-formed value of a kind the signature's type does not take."""

    def __init__(self, message: str, unsafe: bool = False, mismatch: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe
        self.mismatch = mismatch


# --- whole columns (pandas Series) -------------------------------------------------------

def convert_series(series: pd.Series, kind: DataType) -> pd.Series:
    """Convert one column to a signature type; raises :class:`ConversionError`."""
    if isinstance(kind, ScalarType):
        return _SERIES_CONVERTERS[kind.name](series, kind.name)
    if isinstance(kind, AnyType):
        return series
    return series.map(lambda value: convert_value(value, kind))


def _to_floating(series: pd.Series, name: str) -> pd.Series:
    target = np.float32 if name == "float" else np.float64
    if series.dtype.kind in "fiub":
        return series.astype(target)
    try:
        return series.astype(target)
    except (ValueError, TypeError) as exc:
        raise ConversionError(str(exc)) from None


def _to_integer(series: pd.Series, name: str) -> pd.Series:
    target = np.int32 if name == "integer" else np.int64
    kind = series.dtype.kind
    if kind == "f":
        array = series.to_numpy()
        if np.isnan(array).any():
            raise ConversionError(f"missing values cannot be held in type {name}", unsafe=True)
        if not np.all(np.mod(array, 1) == 0):
            raise ConversionError(f"fractional values cannot be safely converted to {name}", unsafe=True)
    elif kind not in "iub":
        series = pd.Series([_integral(v, name) for v in series], index=series.index, name=series.name, dtype=object)
    if kind != "b":
        _check_bounds(series.to_numpy(), name)
    return series.astype(target)


def _integral(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise ConversionError(f"could not convert string {value!r} to {name}") from None
    if value is None or isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ConversionError(f"{value!r} is not a number", unsafe=value is None)
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ConversionError(f"fractional value {value} cannot be safely converted to {name}", unsafe=True)
    return int(value)


def _check_bounds(array: np.ndarray, name: str) -> None:
    bounds = _INT_BOUNDS[name]
    if array.size and (array.max() > bounds.max or array.min() < bounds.min):
        raise ConversionError(f"values outside the range of {name} ({bounds.min}..{bounds.max})", unsafe=True)


def _to_boolean(series: pd.Series, name: str) -> pd.Series:
    if series.dtype.kind == "b":
        return series
    if series.dtype.kind == "O" and all(isinstance(v, (bool, np.bool_)) for v in series):
        return series.astype(bool)
    raise ConversionError(f"can not safely convert {series.dtype} to boolean", unsafe=True)


def _to_string(series: pd.Series, name: str) -> pd.Series:
    """Values as sent: MLflow passes a string column through unconverted (a number stays a number,
    text keeps pandas' ``str`` dtype), and models written for it expect the same."""
    return series if isinstance(series.dtype, pd.StringDtype) else series.astype(object)


def _to_binary(series: pd.Series, name: str) -> pd.Series:
    return series.map(lambda value: _binary_value(value))


def _to_datetime(series: pd.Series, name: str) -> pd.Series:
    if series.dtype.kind == "f":
        _check_epoch_nanoseconds(series.to_numpy())
    try:
        if series.dtype.kind in "OUT" or isinstance(series.dtype, pd.StringDtype):
            converted = pd.to_datetime(series, format="ISO8601")
        else:
            converted = pd.to_datetime(series)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConversionError(f"not an ISO 8601 datetime ({exc})") from None
    if getattr(converted.dtype, "tz", None) is not None:
        raise ConversionError("timezone-aware datetimes are not supported; send naive ISO 8601 values", mismatch=True)
    return converted.astype("datetime64[ns]")


def _check_epoch_nanoseconds(array: np.ndarray) -> None:
    """Numbers are nanoseconds since the epoch: a fraction, an infinity or a number beyond int64 is
    refused (pandas would round it or make it NaT); NaN stays a missing value."""
    bounds = np.iinfo(np.int64)
    present = array[~np.isnan(array)]
    if not (np.isfinite(present).all() and np.all(np.mod(present, 1) == 0)
            and np.all((present >= bounds.min) & (present < bounds.max))):
        raise ConversionError("numbers for a datetime must be whole nanoseconds since the epoch within int64")


_SERIES_CONVERTERS = {
    "double": _to_floating,
    "float": _to_floating,
    "long": _to_integer,
    "integer": _to_integer,
    "boolean": _to_boolean,
    "string": _to_string,
    "binary": _to_binary,
    "datetime": _to_datetime,
}


# --- single values (nested types and params) --------------------------------------------

def convert_value(value: Any, kind: DataType) -> Any:
    """Convert one (possibly nested) value to a signature type; raises :class:`ConversionError`."""
    if isinstance(kind, AnyType) or value is None:
        return value
    if isinstance(kind, ArrayType):
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise ConversionError(f"expected an array, got {type(value).__name__}", unsafe=True)
        return [convert_value(item, kind.items) for item in value]
    if isinstance(kind, MapType):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConversionError(f"expected an object with string keys, got {type(value).__name__}", unsafe=True)
        return {key: convert_value(item, kind.values) for key, item in value.items()}
    if isinstance(kind, ObjectType):
        return _object_value(value, kind)
    return convert_scalar(value, kind.name)


def _object_value(value: Any, kind: ObjectType) -> dict:
    if not isinstance(value, dict):
        raise ConversionError(f"expected an object, got {type(value).__name__}", unsafe=True)
    known = {prop.name for prop in kind.properties}
    extra = sorted(set(value) - known)
    if extra:
        raise ConversionError(f"unexpected properties {extra}; expected {sorted(known)}", unsafe=True)
    missing = [p.name for p in kind.properties if p.required and p.name not in value]
    if missing:
        raise ConversionError(f"missing required properties {missing}", unsafe=True)
    return {p.name: convert_value(value[p.name], p.type) for p in kind.properties if p.name in value}


def convert_scalar(value: Any, name: str) -> Any:
    """Convert one scalar to the Python value of a scalar signature type."""
    if name in ("double", "float"):
        if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
            return float(value)
    elif name in ("long", "integer"):
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            _check_bounds(np.asarray([value], dtype=object), name)
            return int(value)
    elif name == "boolean":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif name == "string":
        if isinstance(value, str):
            return value
    elif name == "binary":
        return _binary_value(value)
    elif name == "datetime":
        return _datetime_value(value)
    raise ConversionError(f"can not safely convert {type(value).__name__} {value!r} to {name}", unsafe=True)


def _binary_value(value: Any) -> Any:
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(_LINE_BREAKS.sub("", value), validate=True)
        except (binascii.Error, ValueError):
            raise ConversionError("not valid standard base64 (URL-safe base64 is not accepted)") from None
    raise ConversionError(f"expected base64 text or bytes, got {type(value).__name__}", unsafe=True)


def _datetime_value(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, np.datetime64, pd.Timestamp)):
        return pd.Timestamp(value)
    if isinstance(value, str):
        try:
            return pd.Timestamp(dt.datetime.fromisoformat(value))
        except ValueError:
            raise ConversionError(f"{value!r} is not an ISO 8601 datetime") from None
    raise ConversionError(f"can not safely convert {type(value).__name__} to datetime", unsafe=True)
