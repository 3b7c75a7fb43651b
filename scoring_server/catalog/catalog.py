"""Many models behind one server: names → scorers, loaded on demand in each worker.

A model is loaded on its first request (concurrent first requests load it once) and kept in the
worker's :class:`~.cache.LoadedModels`. A model that fails to load answers 503 for itself only;
the failure is remembered for ``retry_seconds`` before loading is tried again. A loaded model on
a moving registry reference is watched by the worker's :class:`~.follower.ReferenceFollower`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flavors import LoadedModel

from ..config import ModelEntry
from ..errors import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE, ScoringError
from ..pipeline import Scorer
from .cache import LoadedModels
from .follower import ReferenceFollower
from .loading import ModelIdentity, is_moving_reference, load_served_model
from .sources import ModelSources

_logger = logging.getLogger(__name__)

MakeScorer = Callable[[LoadedModel, ModelIdentity, ModelEntry], Scorer]


class ModelCatalog:
    """Names → models for one worker, with on-demand loading and LRU unloading."""

    def __init__(self, sources: ModelSources, make_scorer: MakeScorer, cache: LoadedModels,
                 follower: ReferenceFollower, retry_seconds: float = 30.0) -> None:
        self.sources = sources
        self.cache = cache
        self.follower = follower
        self.retry_seconds = retry_seconds
        self._make_scorer = make_scorer
        self._failed: dict[str, tuple[float, str]] = {}
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
            raise ScoringError(f"No model named {name!r}; known models: {sorted(entries)}", RESOURCE_DOES_NOT_EXIST, 404)
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

    def add(self, entry: ModelEntry) -> None:
        """Serve ``entry`` in every worker (admin API, which needs ``sources.admin``); 409 if the name is taken."""
        self.sources.admin.add(entry, set(self.sources.entries()))

    def remove(self, name: str) -> None:
        """Stop serving ``name`` in every worker (admin API), unloading it here now."""
        self.entry(name)
        self.sources.admin.remove(name)
        self._unload(name)

    def _load(self, entry: ModelEntry) -> Scorer:
        failed = self._failed.get(entry.name)
        if failed and time.monotonic() - failed[0] < self.retry_seconds:
            raise _unavailable(entry.name, failed[1])
        try:
            model, identity = load_served_model(entry.uri, self.follower.registry_root)
            scorer = self._make_scorer(model, ModelIdentity(entry.name, identity.version), entry)
        except Exception as exc:  # any loader failure is this model's problem only
            self._failed[entry.name] = (time.monotonic(), str(exc))
            _logger.error("Cannot load model %s from %s: %s", entry.name, entry.uri, exc)
            raise _unavailable(entry.name, str(exc)) from None
        self._failed.pop(entry.name, None)
        if is_moving_reference(entry.uri):
            self.follower.watch(entry.name, entry.uri, identity,
                                lambda new_model, new_identity: self._install(entry, new_model, new_identity))
        for evicted in self.cache.add(entry.name, scorer):
            self.follower.unwatch(evicted)
            _logger.info("Unloaded model %s (least recently used)", evicted)
        _logger.info("Loaded model %s from %s", entry.name, entry.uri)
        return scorer

    def _install(self, entry: ModelEntry, model: LoadedModel, identity: ModelIdentity) -> None:
        """A followed reference moved: serve the new version if the model is still loaded."""
        self.cache.replace(entry.name, self._make_scorer(model, ModelIdentity(entry.name, identity.version), entry))

    def _unload(self, name: str) -> None:
        self.follower.unwatch(name)
        self._failed.pop(name, None)
        if self.cache.remove(name):
            _logger.info("Unloaded model %s (no longer served)", name)

    def _unload_removed(self) -> None:
        served = self.sources.entries()
        for name in self.cache.names():
            if name not in served:
                self._unload(name)

    def _status(self, entry: ModelEntry) -> dict:
        cached = self.cache.get(entry.name)
        return {"name": entry.name, "uri": entry.uri, "loaded": cached is not None,
                "version": cached.scorer.identity.version if cached else None,
                "last_used": cached.last_used if cached else None}


def _unavailable(name: str, reason: str) -> ScoringError:
    return ScoringError(f"Model {name!r} cannot be loaded: {reason}", TEMPORARILY_UNAVAILABLE, 503)
