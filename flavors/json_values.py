"""The one JSON fallback for the values models take and return, shared by saving and serving."""
from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd


def json_default(value: Any) -> Any:
    """A JSON-able stand-in for ``value``: the ``default=`` of ``json.dumps`` and ``orjson.dumps``.

    numpy arrays and scalars become lists and Python scalars, bytes base64 text, dates, times
    and datetimes ISO 8601 text, sets and tuples lists, DataFrames lists of records and Series
    the records of a one-column frame (as MLflow writes predictions). Anything else is a TypeError.
    """
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.date, dt.time)):  # datetimes and pandas Timestamps are dates
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series):
        return pd.DataFrame(value).to_dict(orient="records")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
