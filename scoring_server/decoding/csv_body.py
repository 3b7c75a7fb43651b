"""CSV bodies: a header row and data rows, parsed with pandas."""
from __future__ import annotations

import io

import pandas as pd

from flavors.signature import ColSpec, ScalarType, Schema

from ..errors import ScoringError
from .limits import DecodeLimits, active_limits, check_table

# Columns whose text must reach the model as text, not be guessed into numbers or dates.
_TEXT_TYPES = {"string", "binary", "datetime"}


def decode_csv(body: bytes, input_schema: Schema | None, limits: DecodeLimits | None = None) -> pd.DataFrame:
    """Parse a CSV body; text-typed signature columns are read as strings (``"007"`` stays ``"007"``).

    Within ``limits`` (by default the active ones): the header is read first, and then no more
    rows than the limits allow for that many columns, plus one to tell that there were more
    (rows shorter than the header are padded, so a wide header and short rows are refused
    before they are padded)."""
    limits = active_limits() if limits is None else limits
    try:
        if not limits.bounds_size:
            return pd.read_csv(io.BytesIO(body), dtype=_text_columns(input_schema) or None)
        columns = _header_columns(body)
        check_table(0, columns, limits, "The CSV body")
        allowed = _rows_allowed(columns, limits)
        frame = pd.read_csv(io.BytesIO(body), dtype=_text_columns(input_schema) or None,
                            nrows=None if allowed is None else allowed + 1)
    except ScoringError:
        raise
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise ScoringError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted "
            f"Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        ) from None
    check_table(len(frame), len(frame.columns), limits, "The CSV body",
                cut=allowed is not None and len(frame) > allowed)
    _refuse_duplicate_header(body, frame)
    return frame


def _refuse_duplicate_header(body: bytes, frame: pd.DataFrame) -> None:
    """A header naming a column twice is ambiguous (pandas renames the second ``x`` to ``x.1``);
    refused as a malformed CSV body, as MLflow's CSV reader fails on it."""
    if not any("." in str(name) for name in frame.columns):
        return
    header = pd.read_csv(io.BytesIO(body), header=None, nrows=1, dtype=str).iloc[0].tolist()
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ScoringError(f"Failed to parse input as a Pandas DataFrame: the CSV header names columns more "
                           f"than once: {duplicated}.")


def _header_columns(body: bytes) -> int:
    """How many columns the header row names: its commas plus one when the first line is a plain
    header (no quotes, so no quoted comma or newline), else as pandas reads the header alone."""
    end = body.find(b"\n")
    line = body[:end] if end >= 0 else body
    if line.strip() and b'"' not in line:
        return line.count(b",") + 1
    return len(pd.read_csv(io.BytesIO(body), nrows=0).columns)


def _rows_allowed(columns: int, limits: DecodeLimits) -> int | None:
    """The most rows of ``columns`` columns the limits allow (None: unbounded)."""
    bounds = [limits.max_rows] if limits.max_rows is not None else []
    if limits.max_cells is not None:
        bounds.append(limits.max_cells // max(columns, 1))
    return min(bounds) if bounds else None


def _text_columns(schema: Schema | None) -> dict[str, type]:
    """Text-typed columns read as Python strings in object columns, as MLflow reads them."""
    if schema is None or schema.is_tensor_spec:
        return {}
    return {
        spec.name: object
        for spec in schema.specs
        if isinstance(spec, ColSpec) and isinstance(spec.type, ScalarType) and spec.type.name in _TEXT_TYPES
        and spec.name is not None
    }
