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
           "RegistryStore", "SqliteStore", "model_directory", "parse_models_uri", "registry_root"]


def model_directory(model_uri: str, registry_root: str | None = None) -> Path:
    """The local directory a model URI names (a ``models:/`` URI's version directory in the registry at
    ``registry_root``); a :class:`RegistryError` when there is none, or it holds no MLmodel file."""
    from flavors.uri import resolve_model_uri

    try:
        path = (Path(ModelRegistry(registry_root).resolve_uri(model_uri).path) if model_uri.startswith("models:")
                else resolve_model_uri(model_uri))
    except ModelLoadError as exc:
        raise RegistryError(str(exc)) from None
    if not (path / "MLmodel").is_file():
        raise RegistryError(f"{path} is not a model directory (it has no MLmodel file)")
    return path


def _resolve_models_uri(uri: str) -> Path:
    try:
        return Path(ModelRegistry().resolve_uri(uri).path)
    except RegistryError as exc:
        raise ModelLoadError(str(exc)) from None


RESOLVERS["models"] = _resolve_models_uri
