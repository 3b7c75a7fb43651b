"""Capabilities measured on a model rather than assumed, for frameworks whose models may or may not
treat the rows of a batch separately (neural nets: PyTorch, Keras; ONNX graphs).

In eval mode the usual layers (dense, convolutions, normalisation with running statistics) treat rows
separately, but a model may mix them (a softmax over the batch, a batch mean): the model's own saved
input example, of two rows or more, is predicted batched and row by row, and only a model that answers
the same (within float32 rounding) is called row-independent. Without such an example, it is not.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from flavors.errors import ModelLoadError
from flavors.mlmodel import ModelMetadata, load_serving_input_example
from flavors.signature import ColSpec, Schema, ScalarType


def double_columns(inputs: Schema | None) -> tuple[str, ...] | None:
    """The names of a signature made only of required, named double columns (the fast path's float
    matrix is then what the model gets anyway)."""
    if inputs is None or not inputs.specs or not all(
            isinstance(spec, ColSpec) and spec.name is not None and spec.required
            and spec.type == ScalarType("double") for spec in inputs.specs):
        return None
    return tuple(spec.name for spec in inputs.specs)


def example_input(metadata: ModelMetadata, frame_dtype: Any) -> np.ndarray | dict | None:
    """The saved serving example as the model gets it: a frame's values in ``frame_dtype``, or the
    signature's tensor (a dict of them for named tensors); None without a usable example."""
    try:
        body = load_serving_input_example(metadata)
    except ModelLoadError:
        return None
    if not body:
        return None
    if "dataframe_split" in body:
        return np.asarray(body["dataframe_split"]["data"], dtype=frame_dtype)
    inputs = metadata.signature.inputs if metadata.signature else None
    specs = inputs.specs if inputs is not None and inputs.is_tensor_spec else ()
    value = body.get("inputs")
    if isinstance(value, dict):
        dtypes = {spec.name: spec.dtype for spec in specs}
        return {name: np.asarray(v, dtype=dtypes.get(name, np.float32)) for name, v in value.items()}
    return np.asarray(value, dtype=specs[0].dtype if specs else np.float32) if isinstance(value, list) else None


def rows_independent(forward: Callable[[Any], Any], example: np.ndarray | dict | pd.DataFrame | None, rtol: float,
                     atol: float) -> bool:
    """Whether ``forward`` answers ``example`` (2+ rows) batched as it answers each row alone, floats
    within ``rtol``/``atol`` (a kernel may round a row's last float32 bits differently with the batch)."""
    rows = len(_arrays(example)[0]) if example is not None else 0
    if rows < 2:
        return False
    try:
        batched = _arrays(forward(example))
        alone = [_arrays(forward(_row(example, i))) for i in range(rows)]
    except Exception:  # an example the model cannot take proves nothing
        return False
    return len(batched) == len(alone[0]) and all(
        _agree(output, np.concatenate(parts), rtol, atol) for output, parts in zip(batched, zip(*alone)))


def _row(example: np.ndarray | dict | pd.DataFrame, index: int) -> np.ndarray | dict | pd.DataFrame:
    if isinstance(example, pd.DataFrame):
        return example.iloc[index:index + 1].reset_index(drop=True)
    if isinstance(example, dict):
        return {name: value[index:index + 1] for name, value in example.items()}
    return example[index:index + 1]


def _arrays(value: Any) -> list[np.ndarray]:
    """The arrays of an output or input: one array (a DataFrame's values), or those of a list, tuple or
    dict (by key)."""
    if isinstance(value, pd.DataFrame):
        return [value.to_numpy()]
    if isinstance(value, dict):
        return [array for key in sorted(value) for array in _arrays(value[key])]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays(item)]
    return [np.asarray(value)]


def _agree(first: Any, second: Any, rtol: float, atol: float) -> bool:
    """Equal, floats within the tolerance; object arrays (a classifier's probability maps) item by item."""
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
        if first.shape != second.shape:
            return False
        if first.dtype.kind in "fc" and second.dtype.kind in "fc":
            return bool(np.allclose(first, second, rtol=rtol, atol=atol))
        return all(_agree(a, b, rtol, atol) for a, b in zip(first.ravel(), second.ravel()))
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(_agree(first[k], second[k], rtol, atol) for k in first)
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(_agree(a, b, rtol, atol) for a, b in zip(first, second))
    if isinstance(first, (float, np.floating)) or isinstance(second, (float, np.floating)):
        return bool(np.isclose(first, second, rtol=rtol, atol=atol))
    return bool(np.all(first == second))
