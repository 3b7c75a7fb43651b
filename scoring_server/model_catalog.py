"""Many models behind one server: a catalog of names → URIs, loaded on demand, least recently
used unloaded first.

Each worker process has its own catalog. A model is loaded on its first request (concurrent
first requests load it once), kept while it is among the ``max_loaded`` most recently used and,
if a memory budget is set, while the worker stays under it. A model that fails to load answers
503 for itself only; the failure is remembered for ``retry_seconds`` before loading is tried again.
"""
from __future__ import annotations

import fcntl
import gc
import json
import logging
import resource
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from flavors import LoadedModel

from .errors import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE, ScoringError
from .model_source import ModelFollower, ModelIdentity, is_moving_reference, load_served_model
from .pipeline import Scorer
from .registry import ModelRegistry

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    """A served name, the URI it loads from, and optionally its own wire protocol."""

    name: str
    uri: str
    protocol: str | None = None


@dataclass
class _Loaded:
    scorer: Scorer
    last_used: float
    follower: ModelFollower | None = None  # for a moving registry reference


class ModelCatalog:
    """Names → models for one worker, with on-demand loading and LRU unloading."""

    def __init__(self, entries: list[ModelEntry], make_scorer: Callable[[LoadedModel, ModelIdentity, ModelEntry], Scorer],
                 max_loaded: int, max_memory_mb: float | None = None, registry_root: str | None = None,
                 retry_seconds: float = 30.0, changes_path: Path | None = None) -> None:
        self._entries = {entry.name: entry for entry in entries}
        # Admin changes go through a file every worker of the server reads, so all of them agree.
        self._changes = changes_path or Path(tempfile.mkdtemp(prefix="scoring-server-")) / "catalog-changes.json"
        self._changes_seen = 0.0
        self._make_scorer = make_scorer
        self.max_loaded = max_loaded
        self.max_memory_mb = max_memory_mb
        self.registry_root = registry_root
        self.retry_seconds = retry_seconds
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._failed: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def names(self) -> list[str]:
        self._sync()
        return sorted(self._entries)

    def entry(self, name: str) -> ModelEntry:
        self._sync()
        if name not in self._entries:
            raise ScoringError(f"No model named {name!r}; known models: {self.names()}", RESOURCE_DOES_NOT_EXIST, 404)
        return self._entries[name]

    def scorer(self, name: str) -> Scorer:
        """The scorer for ``name``, loading it if needed (503 if it cannot be loaded)."""
        entry = self.entry(name)
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is not None:
                self._loaded.move_to_end(name)
                loaded.last_used = time.time()
                return loaded.scorer
            name_lock = self._loading.setdefault(name, threading.Lock())
        with name_lock:  # concurrent first requests: one loads, the others wait for it
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name].scorer
            return self._load(entry)

    def _load(self, entry: ModelEntry) -> Scorer:
        failed = self._failed.get(entry.name)
        if failed and time.monotonic() - failed[0] < self.retry_seconds:
            raise _unavailable(entry.name, failed[1])
        try:
            model, identity = load_served_model(entry.uri, self.registry_root)
            scorer = self._make_scorer(model, ModelIdentity(entry.name, identity.version), entry)
        except Exception as exc:  # any loader failure is this model's problem only
            self._failed[entry.name] = (time.monotonic(), str(exc))
            _logger.error("Cannot load model %s from %s: %s", entry.name, entry.uri, exc)
            raise _unavailable(entry.name, str(exc)) from None
        self._failed.pop(entry.name, None)
        follower = None
        if is_moving_reference(entry.uri):
            follower = ModelFollower(entry.uri, self.registry_root, scorer.identity,
                                     install=lambda new_model, new_identity: self._replace(entry, new_model, new_identity))
        with self._lock:
            self._loaded[entry.name] = _Loaded(scorer, time.time(), follower)
            self._evict()
        _logger.info("Loaded model %s from %s (%d loaded)", entry.name, entry.uri, len(self._loaded))
        return scorer

    def _evict(self) -> None:
        """Unload least recently used models beyond the count, then beyond the memory budget."""
        while len(self._loaded) > self.max_loaded:
            self._unload_oldest()
        if self.max_memory_mb is not None:
            gc.collect()
            while len(self._loaded) > 1 and _rss_mb() > self.max_memory_mb:
                self._unload_oldest()
                gc.collect()

    def _unload_oldest(self) -> None:
        name, _ = self._loaded.popitem(last=False)
        _logger.info("Unloaded model %s (least recently used)", name)

    def start(self, poll_seconds: float) -> None:
        """Keep loaded models on moving registry references (stage, alias, latest) up to date, in a
        daemon thread of this worker: a moved reference is loaded in the background and swapped in."""
        def run() -> None:
            while True:
                time.sleep(poll_seconds)
                self.refresh()
        threading.Thread(target=run, name="catalog-follower", daemon=True).start()

    def refresh(self) -> None:
        """Check once every loaded model that follows a moving registry reference."""
        with self._lock:
            followers = [item.follower for item in self._loaded.values() if item.follower is not None]
        for follower in followers:
            follower.check()

    def _replace(self, entry: ModelEntry, model: LoadedModel, identity: ModelIdentity) -> None:
        scorer = self._make_scorer(model, ModelIdentity(entry.name, identity.version), entry)
        with self._lock:
            if entry.name in self._loaded:
                self._loaded[entry.name].scorer = scorer

    def describe(self, name: str) -> dict:
        """What ``GET /models/<name>`` shows: flavor, signature, input example, version."""
        entry = self.entry(name)
        with self._lock:
            loaded = self._loaded.get(name)
        scorer = loaded.scorer if loaded else self.scorer(name)
        metadata = scorer.model.metadata
        signature = metadata.signature.to_mlmodel() if metadata.signature else None
        return {**self._status(entry), "flavor": scorer.model.flavor, "signature": signature,
                "saved_input_example_info": metadata.saved_input_example_info, "model_uuid": metadata.model_uuid}

    def status(self) -> list[dict]:
        """What ``GET /models`` shows: every model, loaded or not, with its last use."""
        return [self._status(self._entries[name]) for name in self.names()]

    def _status(self, entry: ModelEntry) -> dict:
        with self._lock:
            loaded = self._loaded.get(entry.name)
        return {"name": entry.name, "uri": entry.uri, "loaded": loaded is not None,
                "version": loaded.scorer.identity.version if loaded else None,
                "last_used": loaded.last_used if loaded else None}

    def add(self, entry: ModelEntry) -> None:
        """Add a name → URI for every worker (admin API); refused if the name is taken."""
        with self._edit_changes() as changes:
            if entry.name in self._entries or entry.name in changes["added"]:
                raise ScoringError(f"A model named {entry.name!r} already exists", "RESOURCE_ALREADY_EXISTS", 409)
            changes["added"][entry.name] = {"uri": entry.uri, "protocol": entry.protocol}
            changes["removed"] = [name for name in changes["removed"] if name != entry.name]

    def remove(self, name: str) -> None:
        """Unload and forget a model in every worker (admin API)."""
        self.entry(name)
        with self._edit_changes() as changes:
            changes["added"].pop(name, None)
            changes["removed"] = sorted({*changes["removed"], name})

    def _sync(self) -> None:
        """Apply admin changes made through any worker since the last look."""
        try:
            modified = self._changes.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if modified == self._changes_seen:
            return
        changes = json.loads(self._changes.read_text() or "{}")
        with self._lock:
            for name, spec in changes.get("added", {}).items():
                self._entries.setdefault(name, ModelEntry(name, spec["uri"], spec.get("protocol")))
            for name in changes.get("removed", []):
                self._entries.pop(name, None)
                self._loaded.pop(name, None)
                self._failed.pop(name, None)
            self._changes_seen = modified

    @contextmanager
    def _edit_changes(self) -> Iterator[dict]:
        with open(self._changes.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            changes = json.loads(self._changes.read_text()) if self._changes.exists() else {}
            changes.setdefault("added", {})
            changes.setdefault("removed", [])
            yield changes
            staging = self._changes.with_suffix(".tmp")
            staging.write_text(json.dumps(changes))
            staging.replace(self._changes)
        self._sync()


def _unavailable(name: str, reason: str) -> ScoringError:
    return ScoringError(f"Model {name!r} cannot be loaded: {reason}", TEMPORARILY_UNAVAILABLE, 503)


def _rss_mb() -> float:
    """This process's resident memory now (Linux /proc; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- where the entries come from ---------------------------------------------------------

def entries_from_file(path: str | Path) -> list[ModelEntry]:
    """``models.yaml``: ``name: uri`` or ``name: {uri: ..., protocol: ...}``."""
    content = yaml.safe_load(Path(path).read_text()) or {}
    models = content.get("models", content) if isinstance(content, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{path}: expected a mapping of model names to URIs")
    entries = []
    for name, spec in models.items():
        spec = {"uri": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or not isinstance(spec.get("uri"), str):
            raise ValueError(f"{path}: model {name!r} needs a uri")
        unknown = set(spec) - {"uri", "protocol"}
        if unknown:
            raise ValueError(f"{path}: model {name!r} has unknown keys {sorted(unknown)}")
        entries.append(ModelEntry(str(name), spec["uri"], spec.get("protocol")))
    return entries


def entries_from_root(root: str | Path) -> list[ModelEntry]:
    """Every model directory (one with an ``MLmodel``) directly under ``root``, by folder name."""
    found = []
    for child in sorted(Path(root).iterdir()):
        if (child / "MLmodel").is_file():
            found.append(ModelEntry(child.name, str(child)))
    return found


def entries_from_registry(registry_root: str | None, alias: str | None) -> list[ModelEntry]:
    """Every registered model, following its Production stage or the given alias."""
    suffix = f"@{alias}" if alias else "/Production"
    return [ModelEntry(model.name, f"models:/{model.name}{suffix}")
            for model in ModelRegistry(registry_root).list_models()]
