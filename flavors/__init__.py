"""Load MLflow-format model directories without MLflow: ``load_model(uri).predict(data, params)``.

The names below are imported on first use, so that ``import flavors`` (or its light modules,
``flavors.uri`` and ``flavors.errors``) costs nothing: the registry commands use those without
ever loading a model, and pandas alone takes a quarter of a second to import.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flavors.base import LoadedModel
    from flavors.flavor_registry import FlavorRegistry

_EXPORTS = {
    "Capabilities": "flavors.base",
    "Flavor": "flavors.base",
    "LoadedModel": "flavors.base",
    "Predictor": "flavors.base",
    "FlavorPluginError": "flavors.errors",
    "ModelLoadError": "flavors.errors",
    "UntrustedTypesError": "flavors.errors",
    "FlavorRegistry": "flavors.flavor_registry",
    "default_registry": "flavors.flavor_registry",
    "ModelMetadata": "flavors.mlmodel",
    "load_serving_input_example": "flavors.mlmodel",
    "read_mlmodel": "flavors.mlmodel",
    "PythonModel": "flavors.python_model",
    "PythonModelContext": "flavors.python_model",
    "set_model": "flavors.python_model",
    "resolve_model_uri": "flavors.uri",
}

__all__ = sorted([*_EXPORTS, "load_model"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flavors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load_model(uri: str, registry: FlavorRegistry | None = None) -> LoadedModel:
    """Load the model at ``uri`` (a local path or ``file:`` URI) with its flavor's loader.

    One model loads at a time in a process, whatever its flavor (see :mod:`flavors.code_paths`).
    """
    from flavors.base import LoadedModel
    from flavors.code_paths import LOAD_LOCK
    from flavors.flavor_registry import default_registry
    from flavors.mlmodel import read_mlmodel
    from flavors.uri import resolve_model_uri

    metadata = read_mlmodel(resolve_model_uri(uri))
    flavor = (registry or default_registry()).resolve(metadata)
    with LOAD_LOCK:
        predictor = flavor.load(metadata)
    return LoadedModel.from_predictor(metadata, predictor, flavor.name)
