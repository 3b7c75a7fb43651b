"""Load MLflow-format model directories without MLflow: ``load_model(uri).predict(data, params)``."""
from __future__ import annotations

from flavors.base import Flavor, LoadedModel, Predictor
from flavors.errors import FlavorPluginError, ModelLoadError, UntrustedTypesError
from flavors.mlmodel import ModelMetadata, load_serving_input_example, read_mlmodel
from flavors.python_model import PythonModel, PythonModelContext, set_model
from flavors.registry import FlavorRegistry, default_registry
from flavors.uri import resolve_model_uri

__all__ = [
    "Flavor",
    "FlavorPluginError",
    "FlavorRegistry",
    "LoadedModel",
    "ModelLoadError",
    "ModelMetadata",
    "Predictor",
    "PythonModel",
    "PythonModelContext",
    "UntrustedTypesError",
    "default_registry",
    "load_model",
    "load_serving_input_example",
    "read_mlmodel",
    "resolve_model_uri",
    "set_model",
]


def load_model(uri: str, registry: FlavorRegistry | None = None) -> LoadedModel:
    """Load the model at ``uri`` (a local path or ``file:`` URI) with its flavor's loader."""
    metadata = read_mlmodel(resolve_model_uri(uri))
    flavor = (registry or default_registry()).resolve(metadata)
    return LoadedModel.from_predictor(metadata, flavor.load(metadata), flavor.name)
