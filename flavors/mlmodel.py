"""The ``MLmodel`` file: the YAML description at the root of every MLflow-format model."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flavors.errors import ModelLoadError
from flavors.signature import ModelSignature, SignatureError

MLMODEL_FILE = "MLmodel"
PYFUNC = "python_function"


@dataclass(frozen=True)
class ModelMetadata:
    """What ``MLmodel`` says about a model, plus the model directory it was read from."""

    path: Path
    flavors: dict
    signature: ModelSignature | None = None
    saved_input_example_info: dict | None = None
    model_uuid: str | None = None
    mlflow_version: str | None = None
    utc_time_created: str | None = None
    metadata: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def pyfunc_conf(self) -> dict | None:
        """The ``python_function`` flavor section, or None when the model has none."""
        return self.flavors.get(PYFUNC)

    @property
    def mlmodel_path(self) -> Path:
        """The ``MLmodel`` file itself, for messages."""
        return self.path / MLMODEL_FILE

    def data_path(self, flavor: str, default: str | None = None) -> Path:
        """The model file (or folder) a flavor section names in ``data`` (else ``python_function``'s,
        else ``default``), as MLflow's loaders find it; a load error when nothing names one."""
        data = (self.flavors.get(flavor) or {}).get("data") or (self.pyfunc_conf or {}).get("data") or default
        if not isinstance(data, str):
            raise ModelLoadError(f"{self.mlmodel_path} does not name the {flavor} model file ({flavor}.data)")
        return self.path / data


def read_mlmodel(model_dir: str | Path) -> ModelMetadata:
    """Parse ``<model_dir>/MLmodel``; raises ModelLoadError naming the file when it is unusable."""
    path = Path(model_dir).expanduser().resolve()
    mlmodel = path / MLMODEL_FILE
    if not path.is_dir():
        raise ModelLoadError(f"model directory not found: {path}")
    if not mlmodel.is_file():
        raise ModelLoadError(f"no {MLMODEL_FILE} file in model directory {path}")
    try:
        raw = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{mlmodel} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{mlmodel} must be a YAML mapping, got {type(raw).__name__}")
    flavors = raw.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise ModelLoadError(f"{mlmodel} has no 'flavors' section")
    try:
        signature = ModelSignature.from_mlmodel(raw.get("signature"))
    except SignatureError as exc:
        raise ModelLoadError(f"{mlmodel} has an invalid signature: {exc}") from exc
    return ModelMetadata(
        path=path,
        flavors=flavors,
        signature=signature,
        saved_input_example_info=raw.get("saved_input_example_info"),
        model_uuid=raw.get("model_uuid"),
        mlflow_version=raw.get("mlflow_version"),
        utc_time_created=raw.get("utc_time_created"),
        metadata=raw.get("metadata") or {},
        raw=raw,
    )


def write_mlmodel(model_dir: str | Path, raw: dict) -> None:
    """Write ``raw`` as ``<model_dir>/MLmodel`` the way MLflow does (block style, sorted keys)."""
    with open(Path(model_dir) / MLMODEL_FILE, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, default_flow_style=False)


def load_serving_input_example(metadata: ModelMetadata) -> dict | None:
    """The model's example request body (``{"dataframe_split": ...}`` or ``{"inputs": ...}``), if saved.

    Reads ``serving_input_path`` when present; models saved before MLflow wrote that file get one
    built from the ``artifact_path`` example.
    """
    info = metadata.saved_input_example_info
    if not info:
        return None
    if info.get("serving_input_path"):
        return _read_json(metadata.path / info["serving_input_path"])
    example = _read_json(metadata.path / info["artifact_path"])
    if info.get("params"):  # saved as {"inputs": <data>, "params": {...}}
        return {**_serving_body(info.get("type"), example["inputs"]), "params": example["params"]}
    return _serving_body(info.get("type"), example)


def _serving_body(example_type: str | None, data: Any) -> dict:
    if example_type == "dataframe":
        return {"dataframe_split": data}
    if example_type == "ndarray":  # already {"inputs": ...}
        return data
    return {"inputs": data}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not read input example {path}: {exc}") from exc
