"""Tensor-based input schemas: dtype casts and shape checks, for one tensor or named tensors."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flavors.signature import Schema, TensorSpec

from ..errors import invalid_input, invalid_parameter


def enforce_tensor_schema(data: Any, schema: Schema) -> Any:
    """Cast to the spec's dtype and check the shape (``-1`` matches any size)."""
    if schema.has_input_names and len(schema.specs) > 1 or isinstance(data, dict):
        return _enforce_named(data, schema)
    spec = schema.specs[0]
    label = spec.name or "input"
    if isinstance(data, pd.DataFrame) and data.shape[1] == 1 and len(data):
        return cast_tensor(column_tensor(data.iloc[:, 0], spec, label), spec, label)
    array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
    return cast_tensor(array, spec, label)


def _enforce_named(data: Any, schema: Schema) -> dict[str, np.ndarray]:
    if isinstance(data, pd.DataFrame):
        specs = {spec.name: spec for spec in schema.specs}
        data = {name: column_tensor(data[name], specs.get(name), name) if len(data) else data[name].to_numpy()
                for name in data.columns}
    if not isinstance(data, dict):
        raise invalid_parameter(
            f"This model expects named tensors {schema.input_names()}; send 'inputs' as an object of tensors."
        )
    missing = [name for name in schema.input_names() if name not in data]
    if missing:
        raise invalid_parameter(f"Failed to enforce schema. Model is missing inputs {missing}.")
    return {spec.name: cast_tensor(np.asarray(data[spec.name]), spec, spec.name) for spec in schema.specs}


def column_tensor(column: pd.Series, spec: TensorSpec | None, label: str) -> np.ndarray:
    """A DataFrame column as one tensor, as MLflow reads it: scalars for a ``(-1,)`` or ``(-1, 1)``
    tensor, or each row's tensor flattened into a list, stacked and reshaped to the spec (a column
    the signature does not name passes through as it is)."""
    if spec is None:
        return column.to_numpy()
    shape = spec.shape
    if shape[0] != -1 or -1 in shape[1:]:
        raise invalid_parameter(f"For DataFrame input, the first dimension of tensor {label} must be variable "
                                f"(-1) and the others fixed; the signature says {tuple(shape)}.")
    first = column.iloc[0]
    if np.isscalar(first) or first is None:
        if tuple(shape) not in ((-1,), (-1, 1)):
            raise invalid_parameter(f"Column {label} holds scalars, which fit a tensor of shape (-1,) or (-1, 1), "
                                    f"not {tuple(shape)}: send each row's tensor as a list.")
        return column.to_numpy().reshape(shape)
    if not isinstance(first, (list, np.ndarray)):  # an object: BAD_REQUEST, as MLflow answers it
        raise invalid_input(f"Column {label} must hold numbers or lists of numbers for tensor input, "
                                f"not {type(first).__name__}.")
    try:
        array = np.vstack(column.tolist()).reshape(shape)
    except ValueError:
        array = None
    if array is None or len(array) != len(column):
        raise invalid_parameter(f"The lists in column {label} cannot be reshaped to {tuple(shape)}: each row's "
                                "tensor must be a flat list of the same length.")
    return array


def cast_tensor(array: np.ndarray, spec: TensorSpec, label: str) -> np.ndarray:
    """One tensor to the spec's dtype and shape, refusing conversions that change values."""
    _check_shape(array, spec, label)
    if array.dtype == spec.dtype:
        return array
    if array.dtype.kind in "OUS" and spec.dtype.kind in "iufb":
        try:
            array = array.astype(np.float64 if spec.dtype.kind != "b" else bool)
        except (ValueError, TypeError) as exc:
            if any(isinstance(value, (list, np.ndarray)) for value in array.flat):
                raise invalid_parameter(f"Tensor {label} holds lists where the signature's shape "
                                        f"{tuple(spec.shape)} expects numbers.") from None
            raise invalid_input(
                f"Data is not compatible with model signature. Failed to convert tensor {label} to "
                f"type '{spec.dtype}': {exc}"
            ) from None
    if _safe_cast(array, spec.dtype):
        return array.astype(spec.dtype)
    # A float that is no integer in range (null, NaN, too large): BAD_REQUEST, as MLflow answers those.
    refuse = invalid_input if array.dtype.kind == "f" and spec.dtype.kind in "iu" else invalid_parameter
    raise refuse(
        f"Incompatible input types for tensor {label}. Can not safely convert {array.dtype} to {spec.dtype}."
    )


def _safe_cast(array: np.ndarray, dtype: np.dtype) -> bool:
    if np.can_cast(array.dtype, dtype, casting="same_kind") and not (array.dtype.kind == "f" and dtype.kind in "iu"):
        return True
    if array.dtype.kind == "f" and dtype.kind in "iu":
        finite = np.isfinite(array).all()
        info = np.iinfo(dtype)
        return bool(finite and np.all(np.mod(array, 1) == 0)
                    and (array.size == 0 or (array.min() >= info.min and array.max() <= info.max)))
    return dtype.kind == "O"


def _check_shape(array: np.ndarray, spec: TensorSpec, label: str) -> None:
    expected = spec.shape
    if len(expected) != array.ndim or any(e not in (-1, a) for e, a in zip(expected, array.shape)):
        raise invalid_parameter(
            f"Shape of input {label} {tuple(array.shape)} does not match expected shape {tuple(expected)}."
        )
