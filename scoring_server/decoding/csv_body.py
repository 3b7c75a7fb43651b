"""CSV bodies: a header row and data rows, parsed with pandas."""
from __future__ import annotations

import io

import pandas as pd

from flavors.signature import ColSpec, ScalarType, Schema

from ..errors import ScoringError

# Columns whose text must reach the model as text, not be guessed into numbers or dates.
_TEXT_TYPES = {"string", "binary", "datetime"}


def decode_csv(body: bytes, input_schema: Schema | None) -> pd.DataFrame:
    """Parse a CSV body; text-typed signature columns are read as strings (``"007"`` stays ``"007"``)."""
    try:
        return pd.read_csv(io.BytesIO(body), dtype=_text_columns(input_schema) or None)
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise ScoringError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted "
            f"Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        ) from None


def _text_columns(schema: Schema | None) -> dict[str, type]:
    if schema is None or schema.is_tensor_spec:
        return {}
    return {
        spec.name: str
        for spec in schema.specs
        if isinstance(spec, ColSpec) and isinstance(spec.type, ScalarType) and spec.type.name in _TEXT_TYPES
        and spec.name is not None
    }
