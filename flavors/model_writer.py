"""Writing MLflow-format model directories: the parts every flavor's ``save_model`` shares.

The layout matches what MLflow 3 writes: ``MLmodel``, ``conda.yaml``, ``python_env.yaml``,
``requirements.txt`` and, with an input example, ``input_example.json`` and
``serving_input_example.json``. ``mlflow_version`` is left out: these models are not written by MLflow.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import platform
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from flavors.json_values import json_default
from flavors.mlmodel import ModelMetadata, read_mlmodel, write_mlmodel
from flavors.signature import AnyType, ColSpec, ModelSignature, Schema, infer_param_schema, infer_schema

CONDA_FILE = "conda.yaml"
PYTHON_ENV_FILE = "python_env.yaml"
REQUIREMENTS_FILE = "requirements.txt"
EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"

_log = logging.getLogger(__name__)


def prepare_model_dir(path: str | Path) -> Path:
    """Create the (absolute) model directory; refuses a non-empty existing one."""
    model_dir = Path(path).expanduser().resolve()
    if model_dir.exists() and any(model_dir.iterdir()):
        raise FileExistsError(f"model directory {model_dir} already exists and is not empty")
    model_dir.mkdir(parents=True, exist_ok=True)
    return model_dir


def pyfunc_section(loader_module: str, **conf: Any) -> dict:
    """The ``python_function`` flavor section: loader module, environment files, Python version."""
    env = {"conda": CONDA_FILE, "virtualenv": PYTHON_ENV_FILE}
    return {"env": env, "loader_module": loader_module, "python_version": platform.python_version(), **conf}


def pinned(*distributions: str) -> list[str]:
    """``name==version`` of each installed distribution (just ``name`` if not installed), sorted."""
    return sorted(_pin(name) for name in distributions)


def split_example(example: Any) -> tuple[Any, dict | None]:
    """``(data, params)`` of an input example: a ``(data, params_dict)`` pair carries params, as in MLflow."""
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict):
        return example
    return example, None


def save_input_example(model_dir: Path, example: Any) -> dict | None:
    """Write the example files for ``example``; returns ``saved_input_example_info`` (None if no example).

    A DataFrame is stored split-oriented (``dataframe_split`` request), a numpy array or dict of
    arrays as ``{"inputs": ...}`` (``ndarray``), anything else JSON-able as is (``json_object``).
    Params of a ``(data, params)`` example go under ``params`` in both files, as MLflow writes them.
    """
    if example is None:
        return None
    example, params = split_example(example)
    data, serving, info = _encode_example(example)
    if params:
        data, serving, info = {"inputs": data, "params": params}, {**serving, "params": params}, {**info, "params": "true"}
    try:
        example_json = json.dumps(data, default=json_default)
        serving_json = json.dumps(serving, default=json_default, indent=2)
    except TypeError as exc:
        raise TypeError(f"input_example of type {type(example).__name__} is not JSON-serializable: {exc}") from exc
    (model_dir / EXAMPLE_FILE).write_text(example_json, encoding="utf-8")
    (model_dir / SERVING_EXAMPLE_FILE).write_text(serving_json, encoding="utf-8")
    return {"artifact_path": EXAMPLE_FILE, "serving_input_path": SERVING_EXAMPLE_FILE, **info}


def resolve_signature(
    signature: ModelSignature | Literal[False] | None, example: Any, predict: Callable[[Any, dict | None], Any]
) -> ModelSignature | None:
    """The signature to write: the one given, none for ``False`` (MLflow's opt-out), else inferred
    from the input example (and ``predict``'s answer to it) as MLflow's save does."""
    if signature is False:
        return None
    if signature is not None or example is None:
        return signature
    data, params = split_example(copy.deepcopy(example))
    try:
        inputs = infer_schema(data)
        param_schema = infer_param_schema(params) if params else None
        prediction = predict(data, params)
    except Exception as exc:  # MLflow saves the model without a signature, and warns
        _log.warning("could not infer the model signature from the input example: %s: %s", type(exc).__name__, exc)
        return None
    return ModelSignature(inputs, _output_schema(prediction, inputs), param_schema)


def _output_schema(prediction: Any, inputs: Schema) -> Schema:
    """Rows of a column-based model's 1-D answer are one column; an answer with no type is ``any``."""
    if not inputs.is_tensor_spec and isinstance(prediction, np.ndarray) and prediction.ndim == 1:
        prediction = pd.Series(prediction)
    try:
        return infer_schema(prediction)
    except Exception:  # as MLflow: the output schema is then Any
        return Schema((ColSpec(AnyType()),))


def write_model(
    model_dir: Path,
    flavors: dict,
    *,
    requirements: list[str],
    signature: ModelSignature | None = None,
    example_info: dict | None = None,
    metadata: dict | None = None,
) -> ModelMetadata:
    """Write the environment files and ``MLmodel`` once the model files are in place."""
    raw: dict[str, Any] = {
        "flavors": flavors,
        "model_id": None,
        "model_size_bytes": sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()),
        "model_uuid": uuid.uuid4().hex,
        "prompts": None,
        "utc_time_created": str(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)),
    }
    if signature is not None:
        raw.update(signature=signature.to_mlmodel(), is_signature_from_type_hint=False, type_hint_from_example=False)
    if example_info:
        raw["saved_input_example_info"] = example_info
    if metadata:
        raw["metadata"] = metadata
    _write_environment(model_dir, requirements)
    write_mlmodel(model_dir, raw)
    return read_mlmodel(model_dir)


def _write_environment(model_dir: Path, requirements: list[str]) -> None:
    python = platform.python_version()
    pip = _pin("pip").replace("==", "<=")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", pip, {"pip": requirements}],
        "name": "mlflow-env",
    }
    python_env = {
        "python": python,
        "build_dependencies": [_pin("pip"), _pin("setuptools"), _pin("wheel")],
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    with open(model_dir / CONDA_FILE, "w", encoding="utf-8") as f:
        yaml.safe_dump(conda, f, default_flow_style=False)
    with open(model_dir / PYTHON_ENV_FILE, "w", encoding="utf-8") as f:
        yaml.safe_dump(python_env, f, default_flow_style=False, sort_keys=False)
    (model_dir / REQUIREMENTS_FILE).write_text("\n".join(requirements), encoding="utf-8")


def _pin(distribution: str) -> str:
    try:
        return f"{distribution}=={version(distribution)}"
    except PackageNotFoundError:
        return distribution


def _encode_example(example: Any) -> tuple[Any, dict, dict]:
    """(``input_example.json`` content, serving request body, example type info)."""
    if isinstance(example, pd.DataFrame):
        split = example.astype(object).where(example.notna(), None).to_dict(orient="split")
        del split["index"]
        if list(example.columns) == list(range(example.shape[1])):  # default labels are not written
            del split["columns"]
            return split, {"dataframe_split": split}, {"type": "dataframe", "pandas_orient": "values"}
        return split, {"dataframe_split": split}, {"type": "dataframe", "pandas_orient": "split"}
    if isinstance(example, np.ndarray) or (
        isinstance(example, dict) and example and all(isinstance(v, np.ndarray) for v in example.values())
    ):
        arrays = {k: _array_to_list(v) for k, v in example.items()} if isinstance(example, dict) else _array_to_list(example)
        data = {"inputs": arrays}
        return data, data, {"type": "ndarray", "format": "tf-serving"}
    return example, {"inputs": example}, {"type": "json_object"}


def _array_to_list(array: np.ndarray) -> list:
    if array.dtype.kind in "fc":
        return np.where(np.isnan(array), None, array).tolist()
    return array.tolist()
