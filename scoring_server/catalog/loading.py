"""Loading the model a URI names: a model directory, or a ``models:/`` registry reference."""
from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flavors import LoadedModel, default_registry, load_model, read_mlmodel, resolve_model_uri

from ..registry import ModelRegistry, parse_models_uri

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelIdentity:
    """The name and version that answer, sent back as ``X-Model-Name``/``X-Model-Version``."""

    name: str
    version: str | None = None


def load_served_model(uri: str, registry_root: str | None = None) -> tuple[LoadedModel, ModelIdentity]:
    """Load the model ``uri`` names now, with its identity."""
    if uri.startswith("models:"):
        version = ModelRegistry(registry_root).resolve_uri(uri)
        return load_model(version.path), ModelIdentity(version.name, str(version.version))
    model = load_model(uri)
    return model, ModelIdentity(model.metadata.path.name)


def import_shared_modules(uris: Iterable[str], registry_root: str | None = None) -> list[str]:
    """Import what loading these models imports (their flavors say what), without loading them.

    Called before the fork by a server of many models, so that every worker shares those modules
    instead of importing them on its first request. A model that cannot be read is skipped: it
    answers its own error when asked for.
    """
    modules: set[str] = set()
    for uri in uris:
        try:
            path = ModelRegistry(registry_root).resolve_uri(uri).path if uri.startswith("models:") else uri
            modules.update(default_registry().shared_modules(read_mlmodel(resolve_model_uri(str(path)))))
        except Exception as exc:  # noqa: BLE001 - reported when the model is asked for
            _logger.debug("Not preloading modules for %s: %s", uri, exc)
    for module in sorted(modules):
        importlib.import_module(module)
    return sorted(modules)


def is_moving_reference(uri: str) -> bool:
    """A registry stage, alias or ``latest``: the version behind it can change while serving."""
    return uri.startswith("models:") and parse_models_uri(uri).moving
