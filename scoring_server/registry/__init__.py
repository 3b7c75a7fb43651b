"""The model registry: an embedded store of named, versioned models, and ``models:/`` URIs.

Importing this package teaches ``flavors.resolve_model_uri`` the ``models:`` scheme, so every
command and API that takes a model URI takes registry URIs too.
"""
from __future__ import annotations

from pathlib import Path

from flavors.errors import ModelLoadError
from flavors.uri import RESOLVERS

from .errors import RegistryError
from .names import STAGES, ModelReference, parse_models_uri
from .registry import ModelRegistry, registry_root
from .store import ModelVersion, RegisteredModel, RegistryStore, SqliteStore

__all__ = ["STAGES", "ModelReference", "ModelRegistry", "ModelVersion", "RegisteredModel", "RegistryError",
           "RegistryStore", "SqliteStore", "parse_models_uri", "registry_root"]


def _resolve_models_uri(uri: str) -> Path:
    try:
        return Path(ModelRegistry().resolve_uri(uri).path)
    except RegistryError as exc:
        raise ModelLoadError(str(exc)) from None


RESOLVERS["models"] = _resolve_models_uri
