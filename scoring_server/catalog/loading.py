"""Loading the model a URI names: a model directory, or a ``models:/`` registry reference.

Every model a server loads (its one model, a catalog's, a followed reference's next version)
is loaded here, under the server's :class:`~flavors.policy.LoadingPolicy`: the formats it
allows and the skops types it trusts (``model_formats``, ``skops_trusted_types``). A model read
from a pickle format is logged as one warning per load, naming the model and the format.
"""
from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING

from flavors import LoadedModel, default_registry, load_model, read_mlmodel, resolve_model_uri
from flavors.errors import ModelLoadError
from flavors.policy import PICKLE_FORMATS, LoadingPolicy

from ..monitoring import ModelLoadEvent, Observers
from ..registry import ModelRegistry, ModelVersion, parse_models_uri

if TYPE_CHECKING:
    from ..config import ServerConfig

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelIdentity:
    """The name and version that answer, sent back as ``X-Model-Name``/``X-Model-Version``.

    ``uuid`` is a registry version's UUID: what followers compare to see that a reference points
    at another version (a number can come back, in a registry rebuilt from scratch; a UUID cannot).
    ``created`` is when the model was made (its registration, else the ``utc_time_created`` of
    its MLmodel file), in seconds since the epoch; None when unknown.
    """

    name: str
    version: str | None = None
    uuid: str | None = None
    created: float | None = field(default=None, compare=False)

    @property
    def key(self) -> str | None:
        """What tells two versions apart: the UUID, else (a store without UUIDs) the number."""
        return self.uuid or self.version


def loading_policy(config: ServerConfig) -> LoadingPolicy:
    """The configuration's loading policy (``model_formats``, ``skops_trusted_types``, ``device``)."""
    return LoadingPolicy(formats=frozenset(config.model_formats),
                         skops_trusted_types=frozenset(config.skops_trusted_types), device=config.device)


def load_served_model(uri: str, registry_root: str | None = None, policy: LoadingPolicy | None = None,
                      name: str | None = None, observers: Observers | None = None) -> tuple[LoadedModel, ModelIdentity]:
    """Load the model ``uri`` names now, with its identity; ``name`` (the served name) is for logs.
    The load, or its failure, is reported to ``observers`` as a :class:`ModelLoadEvent`."""
    if uri.startswith("models:"):
        version = ModelRegistry(registry_root).resolve_uri(uri)
        return load_version(version, policy, name, observers), identity_of(version)
    model = _reported(observers, name or uri.rstrip("/").rsplit("/", 1)[-1], None, lambda: _load(uri, policy, name))
    return model, ModelIdentity(model.metadata.path.name, created=_saved_at(model))


def load_version(version: ModelVersion, policy: LoadingPolicy | None = None, name: str | None = None,
                 observers: Observers | None = None) -> LoadedModel:
    """Load a registered version (only a completely registered one: a pending one has no files yet)."""
    if not version.servable:
        raise ModelLoadError(f"version {version.version} of {version.name!r} is not completely registered")
    return _reported(observers, name or version.name, str(version.version),
                     lambda: _load(version.path, policy, name or f"{version.name} version {version.version}"))


def identity_of(version: ModelVersion) -> ModelIdentity:
    return ModelIdentity(version.name, str(version.version), version.uuid or None, version.created_at or None)


def _reported(observers: Observers | None, name: str, version: str | None,
              load: Callable[[], LoadedModel]) -> LoadedModel:
    """``load()``, timed and reported to ``observers`` (a failure too, then raised)."""
    started = perf_counter()
    try:
        model = load()
    except Exception as exc:
        if observers:
            observers.emit(ModelLoadEvent(name, version, None, perf_counter() - started, type(exc).__name__))
        raise
    if observers:
        observers.emit(ModelLoadEvent(name, version, model.flavor, perf_counter() - started))
    return model


def _saved_at(model: LoadedModel) -> float | None:
    """When the model was saved, from its MLmodel's ``utc_time_created`` (None if absent or unreadable)."""
    text = model.metadata.utc_time_created
    try:
        return dt.datetime.fromisoformat(str(text)).replace(tzinfo=dt.timezone.utc).timestamp() if text else None
    except ValueError:
        return None


def _load(path: str, policy: LoadingPolicy | None, name: str | None) -> LoadedModel:
    model = load_model(path, policy=policy)
    if model.model_format in PICKLE_FORMATS:
        _logger.warning("Model %s was loaded from a %s file: unpickling runs code from the model file. "
                        "Servers that need not load pickles refuse them with --model-formats (docs/security.md)",
                        name or model.metadata.path.name, model.model_format)
    return model


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
