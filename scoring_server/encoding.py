"""Response encoding: predictions to JSON bytes, shaped as MLflow shapes them.

numpy arrays become lists, DataFrames lists of records, Series records of a one-column frame;
dicts, lists and scalars pass through. NaN and infinities are written as ``NaN``/``Infinity``
like MLflow's encoder (orjson, used for speed otherwise, would write ``null``).
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pandas as pd

from flavors.json_values import json_default as _default

from .errors import ScoringError

_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def encode_predictions(raw: Any, wrap: bool = True) -> bytes:
    """``{"predictions": ...}`` (or the bare value for raw LLM payloads) as JSON bytes."""
    value = to_jsonable(raw)
    payload = {"predictions": value} if wrap else value
    try:
        if _has_non_finite(value):
            return json.dumps(payload, default=_default).encode()
        return orjson.dumps(payload, default=_default, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
        raise ScoringError(f"The model's output could not be encoded as JSON: {exc}") from None


def to_jsonable(raw: Any) -> Any:
    """MLflow's conversion of prediction containers before JSON encoding."""
    if isinstance(raw, pd.DataFrame):
        return raw.to_dict(orient="records")
    if isinstance(raw, pd.Series):
        return pd.DataFrame(raw).to_dict(orient="records")
    if isinstance(raw, dict):
        return {name: _widened(value) for name, value in raw.items()}
    return _widened(raw)


def _widened(value: Any) -> Any:
    """Narrow floats (float32, float16) as doubles: MLflow writes ``float(x)``, so a float32 tensor's
    ``-0.06545797`` is ``-0.06545796990394592`` on its wire, and a client comparing doubles sees that."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype.itemsize < 8:
        return value.astype(np.float64)
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(value)
    return value


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fc" and not np.isfinite(value).all() or (
            value.dtype.kind == "O" and any(_has_non_finite(v) for v in value.ravel())
        )
    if isinstance(value, np.floating):
        return not np.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False
