"""Many models behind one server: names → scorers, loaded on demand in each worker.

A model is loaded on its first request (concurrent first requests load it once) and kept in the
worker's :class:`~.cache.LoadedModels`. A model that fails to load answers 503 for itself only;
the failure is remembered for ``retry_seconds`` before loading is tried again, so a model whose
load runs code and fails does not run it again on every request. A loaded model on a moving
registry reference is watched by the worker's :class:`~.follower.ReferenceFollower`.

Every load follows the server's loading policy. What a caller is told depends on its scopes
(:func:`scoring_server.security.caller_has_scope`): local paths and load failure details only to
callers with ``admin`` (the server log always has them), other models' names only to callers
with ``read`` (who may list them).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from flask import has_request_context

from flavors import LoadedModel
from flavors.errors import ModelLoadError
from flavors.policy import LoadingPolicy

from ..config import ModelEntry
from ..errors import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE, ScoringError
from ..monitoring import Observers, ServedModelsEvent
from ..pipeline import Scorer
from ..security import ADMIN, READ, caller_has_scope
from .cache import LoadedModels
from .follower import ReferenceFollower
from .loading import ModelIdentity, is_moving_reference, load_served_model
from .sources import ModelSources

_logger = logging.getLogger(__name__)

MakeScorer = Callable[[LoadedModel, ModelIdentity, ModelEntry], Scorer]


class ModelCatalog:
    """Names → models for one worker, with on-demand loading and LRU unloading."""

    def __init__(self, sources: ModelSources, make_scorer: MakeScorer, cache: LoadedModels,
                 follower: ReferenceFollower, retry_seconds: float = 30.0, policy: LoadingPolicy | None = None,
                 observers: Observers | None = None) -> None:
        self.sources = sources
        self.cache = cache
        self.follower = follower
        self.retry_seconds = retry_seconds
        self.policy = policy
        self.observers = observers
        self._make_scorer = make_scorer
        self._failed: dict[str, tuple[float, str, str]] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        follower.also.append(self.refresh)

    def names(self) -> list[str]:
        """Every served name, sorted."""
        return sorted(self.sources.entries())

    def entry(self, name: str) -> ModelEntry:
        """``name``'s entry; 404 naming the served models if there is none."""
        entries = self.sources.entries()
        if name not in entries:
            known = f"; known models: {sorted(entries)}" if _caller_may(READ) else ""
            raise ScoringError(f"No model named {name!r}{known}", RESOURCE_DOES_NOT_EXIST, 404)
        return entries[name]

    def scorer(self, name: str) -> Scorer:
        """The scorer for ``name``, loading it if needed (503 if it cannot be loaded)."""
        entry = self.entry(name)
        scorer = self.cache.use(name)
        if scorer is not None:
            return scorer
        with self._lock:
            name_lock = self._loading.setdefault(name, threading.Lock())
        with name_lock:  # concurrent first requests: one loads, the others wait for it
            return self.cache.use(name) or self._load(entry)

    def refresh(self) -> None:
        """List the registry again and unload models no longer served (run on every poll)."""
        self.sources.refresh_registry()
        self._unload_removed()

    def describe(self, name: str) -> dict:
        """What ``GET /models/<name>`` shows: flavor, signature, input example, version."""
        entry = self.entry(name)
        cached = self.cache.get(name)
        scorer = cached.scorer if cached else self.scorer(name)
        metadata = scorer.model.metadata
        signature = metadata.signature.to_mlmodel() if metadata.signature else None
        return {**self._status(entry), "flavor": scorer.model.flavor, "signature": signature,
                "saved_input_example_info": metadata.saved_input_example_info, "model_uuid": metadata.model_uuid}

    def status(self) -> list[dict]:
        """What ``GET /models`` shows: every model, loaded or not, with its last use."""
        self._unload_removed()
        entries = self.sources.entries()
        return [self._status(entries[name]) for name in sorted(entries)]

    def add(self, entry: ModelEntry) -> ModelEntry:
        """Serve ``entry`` in every worker (admin API, which needs ``sources.admin``); 409 if the name is
        taken, 400/403 if its URI is not admitted (see :mod:`.roots`). Returns the entry as recorded."""
        return self.sources.admin.add(entry, set(self.sources.entries()))

    def remove(self, name: str) -> None:
        """Stop serving ``name`` in every worker (admin API), unloading it here now."""
        self.entry(name)
        self.sources.admin.remove(name)
        self._unload(name)

    def _load(self, entry: ModelEntry) -> Scorer:
        failed = self._failed.get(entry.name)
        if failed and time.monotonic() - failed[0] < self.retry_seconds:
            raise _unavailable(entry.name, failed[1], failed[2])
        try:
            self._check_admitted(entry)
            model, identity = load_served_model(entry.uri, self.follower.registry_root, self.policy, entry.name,
                                                self.observers)
            scorer = self._make_scorer(model, dataclasses.replace(identity, name=entry.name), entry)
        except Exception as exc:  # any loader failure is this model's problem only
            public = getattr(exc, "public_message", None) or "the server log has the reason"
            self._failed[entry.name] = (time.monotonic(), str(exc), public)
            _logger.error("Cannot load model %s from %s: %s", entry.name, entry.uri, exc)
            raise _unavailable(entry.name, str(exc), public) from None
        self._failed.pop(entry.name, None)
        if is_moving_reference(entry.uri):
            self.follower.watch(entry.name, entry.uri, identity,
                                lambda new_model, new_identity: self._install(entry, new_model, new_identity))
        for evicted in self.cache.add(entry.name, scorer):
            self.follower.unwatch(evicted)
            _logger.info("Unloaded model %s (least recently used)", evicted)
        _logger.info("Loaded model %s from %s", entry.name, entry.uri)
        self.report()
        return scorer

    def loaded_scorers(self) -> list[Scorer]:
        """The scorers of the models loaded in this process, least recently used first."""
        return [cached.scorer for name in self.cache.names() if (cached := self.cache.get(name)) is not None]

    def report(self) -> None:
        """Tell the observers which models this process serves (on a change, and when a worker starts)."""
        if self.observers:
            self.observers.emit(ServedModelsEvent(tuple(scorer.served_model() for scorer in self.loaded_scorers())))

    def _install(self, entry: ModelEntry, model: LoadedModel, identity: ModelIdentity) -> None:
        """A followed reference moved: serve the new version if the model is still loaded."""
        if self.cache.replace(entry.name, self._make_scorer(model, dataclasses.replace(identity, name=entry.name),
                                                           entry)):
            self.report()

    def _check_admitted(self, entry: ModelEntry) -> None:
        """A model added through the admin API loads only while its directory is still inside the roots."""
        admin = self.sources.admin
        if admin is not None and entry.name in admin.current()[0] and not admin.admitted(entry):
            error = ModelLoadError(f"{entry.uri} is no longer a model directory inside the allowed model roots")
            error.public_message = "its uri is no longer allowed"
            raise error

    def _unload(self, name: str) -> None:
        self.follower.unwatch(name)
        self._failed.pop(name, None)
        if self.cache.remove(name):
            _logger.info("Unloaded model %s (no longer served)", name)
            self.report()

    def _unload_removed(self) -> None:
        served = self.sources.entries()
        for name in self.cache.names():
            if name not in served:
                self._unload(name)

    def _status(self, entry: ModelEntry) -> dict:
        """A model as listed: its URI only to admins, or when it is a ``models:/`` reference (a
        local directory's path says where the server's files are: others get None)."""
        cached = self.cache.get(entry.name)
        uri = entry.uri if entry.uri.startswith("models:") or _caller_may(ADMIN) else None
        return {"name": entry.name, "uri": uri, "loaded": cached is not None,
                "version": cached.scorer.identity.version if cached else None,
                "last_used": cached.last_used if cached else None}


def _caller_may(scope: str) -> bool:
    """Whether the caller of the current request holds ``scope``; outside a request (the server
    itself, tests, tools) everything may be said."""
    return not has_request_context() or caller_has_scope(scope)


def _unavailable(name: str, reason: str, public: str) -> ScoringError:
    """The 503 of a model that cannot be loaded: the reason for admins, a reason without paths for others."""
    shown = reason if _caller_may(ADMIN) else public
    return ScoringError(f"Model {name!r} cannot be loaded: {shown}", TEMPORARILY_UNAVAILABLE, 503)
