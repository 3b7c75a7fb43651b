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
    from flavors.policy import LoadingPolicy

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
    "FormatNotAllowedError": "flavors.policy",
    "LoadingPolicy": "flavors.policy",
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


def load_model(uri: str, registry: FlavorRegistry | None = None, *, policy: LoadingPolicy | None = None) -> LoadedModel:
    """Load the model at ``uri`` (a local path or ``file:`` URI) with its flavor's loader.

    ``policy`` (:class:`~flavors.policy.LoadingPolicy`) says which formats may be loaded and which
    extra skops types are trusted; the default allows every format and trusts no extra type. A
    model it refuses raises :class:`~flavors.policy.FormatNotAllowedError` before any of its files
    is opened. The loaded model's ``model_format`` says what was read (None when a plug-in flavor
    does not say).

    One model loads at a time in a process, whatever its flavor (see :mod:`flavors.code_paths`).
    """
    from flavors.base import LoadedModel
    from flavors.code_paths import LOAD_LOCK
    from flavors.flavor_registry import default_registry, load_with_policy
    from flavors.mlmodel import read_mlmodel
    from flavors.policy import DEFAULT_POLICY
    from flavors.uri import resolve_model_uri

    policy = policy or DEFAULT_POLICY
    metadata = read_mlmodel(resolve_model_uri(uri))
    flavor = (registry or default_registry()).resolve(metadata)
    with LOAD_LOCK:
        predictor, model_format = load_with_policy(flavor, metadata, policy)
    return LoadedModel.from_predictor(metadata, predictor, flavor.name, model_format)
