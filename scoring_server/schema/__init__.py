"""Signature enforcement: make decoded input and params fit the model's signature, or refuse.

``columns`` handles column-based input schemas, ``tensors`` tensor-based ones, ``params``
the inference parameters, and ``values`` the per-value rules they share (safe widening,
base64 binaries, ISO datetimes, nested array/object/map types).
"""
from __future__ import annotations

from typing import Any

from flavors.signature import Schema

from .columns import enforce_column_schema
from .params import enforce_params, enforce_params_and_method
from .tensors import enforce_tensor_schema

__all__ = ["enforce_input_schema", "enforce_params", "enforce_params_and_method"]


def enforce_input_schema(data: Any, schema: Schema | None) -> Any:
    """Return ``data`` converted to the schema's types, order and shapes; no schema, no change."""
    if schema is None or not schema.specs:
        return data
    if schema.is_tensor_spec:
        return enforce_tensor_schema(data, schema)
    return enforce_column_schema(data, schema)
