"""Parquet bodies (``application/vnd.apache.parquet``): one table, read with pyarrow."""
from __future__ import annotations

import io

import pandas as pd

from ..errors import ScoringError


def decode_parquet(body: bytes) -> pd.DataFrame:
    """Read a parquet file sent as the request body into a DataFrame."""
    try:
        return pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for bad files
        raise ScoringError(f"Failed to parse input as a Parquet file. Error: '{exc}'") from None
