"""A pandas-free path for the most common request: numeric rows for a model that takes a matrix.

When a model's input is a fixed list of ``double`` columns (from its signature or, without a
signature, from the model itself) and its flavor promises the same predictions for a float
matrix as for a DataFrame (``LoadedModel.array_input``), a JSON request whose rows are plain
numbers is decoded straight into a float64 matrix in the model's column order. Building and
converting a DataFrame, and scikit-learn's DataFrame checks, are the bulk of a small request's
time otherwise.

A CSV body whose header names exactly the model's columns, in order, and whose cells are all
plain numbers, is read the same way (``numpy.loadtxt``, without pandas).

Anything outside that case returns None and takes the general path, which also produces every
error answer, so answers never depend on which path ran.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from flavors import LoadedModel
from flavors.signature import ColSpec, ScalarType

from .decoding.json_formats import DATAFRAME_RECORDS, DATAFRAME_SPLIT, INPUTS, LLM_KEYS, PARAMS_KEY
from .decoding.limits import DecodeLimits


class NumericFastPath:
    """Decodes numeric requests for one model into float64 matrices."""

    def __init__(self, columns: tuple[str, ...], exact_columns: bool) -> None:
        self.columns = columns
        self.exact_columns = exact_columns  # no signature: nothing reorders or drops columns
        self._column_list = list(columns)
        self._header = [name.encode() for name in columns]

    @classmethod
    def for_model(cls, model: LoadedModel) -> NumericFastPath | None:
        """The fast path for ``model``, or None when its input is not a fixed set of double columns."""
        if model.array_input is None:
            return None
        signature = model.metadata.signature
        if signature is not None and signature.inputs is not None:
            columns = _double_columns(signature.inputs.specs)
        else:
            columns = model.array_input.column_names
        if columns and model.array_input.matches(columns):
            return cls(columns, exact_columns=signature is None or signature.inputs is None)
        return None

    def matrix(self, payload: Any) -> np.ndarray | None:
        """The payload's rows as a matrix in model column order, or None for the general path."""
        if not isinstance(payload, dict) or any(key in payload for key in LLM_KEYS):
            return None
        keys = [key for key in payload if key != PARAMS_KEY]
        if len(keys) != 1:
            return None
        try:
            rows = self._rows(keys[0], payload[keys[0]])
            matrix = np.array(rows, dtype=np.float64) if rows else None
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] != len(self.columns):
            return None
        return matrix

    def csv_matrix(self, body: bytes, limits: DecodeLimits) -> np.ndarray | None:
        """A CSV body's rows as a matrix, when its header is the model's columns and every cell a
        number (as pandas would read it); None for the general path (and any error it words)."""
        end = body.find(b"\n")
        header = body[:end].rstrip(b"\r") if end >= 0 else b""
        rows = body[end + 1:]
        if header.split(b",") != self._header or not rows.strip() or (
                limits.bounds_size and not _within(rows, len(self.columns), limits)):
            return None
        try:
            matrix = np.loadtxt(io.BytesIO(rows), delimiter=",", comments=None, ndmin=2, dtype=np.float64)
        except ValueError:
            return None
        return matrix if matrix.shape[1:] == (len(self.columns),) and len(matrix) else None

    def frame_as_matrix(self, data: Any) -> Any:
        """A validated DataFrame of exactly the model's double columns, as its values; else unchanged."""
        if isinstance(data, pd.DataFrame) and list(data.columns) == self._column_list and all(
            dtype == np.float64 for dtype in data.dtypes
        ):
            return data.to_numpy()
        return data

    def _rows(self, key: str, value: Any) -> list | None:
        if key == DATAFRAME_SPLIT:
            return value["data"] if value["columns"] == self._column_list else None
        if key == DATAFRAME_RECORDS:
            if self.exact_columns and any(list(row) != self._column_list for row in value):
                return None
            return [[row[name] for name in self.columns] for row in value]
        if key == INPUTS:
            return self._input_rows(value)
        return None

    def _input_rows(self, value: dict) -> list | None:
        if self.exact_columns:
            return None  # without a signature each column is typed on its own: leave that to numpy
        if len({len(column) if isinstance(column, list) else 1 for column in value.values()}) != 1:
            return None  # unequal columns are an error the general path words
        columns = [value[name] for name in self.columns]
        return list(zip(*columns)) if isinstance(columns[0], list) else [columns]


def _within(lines: bytes, columns: int, limits: DecodeLimits) -> bool:
    """Whether CSV ``lines`` hold few enough rows (at most one a line) for the decode limits."""
    rows = lines.count(b"\n") + (not lines.endswith(b"\n"))
    return (limits.max_rows is None or rows <= limits.max_rows) and (
        limits.max_cells is None or rows * columns <= limits.max_cells)


def _double_columns(specs: tuple) -> tuple[str, ...] | None:
    """Names of a signature made only of required, named double columns; None otherwise."""
    if all(
        isinstance(spec, ColSpec) and spec.name is not None and spec.required and spec.type == ScalarType("double")
        for spec in specs
    ):
        return tuple(spec.name for spec in specs)
    return None
