"""Following moving registry references (``models:/NAME/Production``, ``@alias``, ``/latest``).

One :class:`ReferenceFollower` per worker polls every reference it watches, for a single-model
server (its one model) and a many-model server (each loaded model) alike. When a reference
points at another version, that version is loaded in the polling thread and handed to the
watch's ``install``; a version that fails to load is logged, the current one keeps serving, and
it is not tried again until the reference moves again.

Versions are told apart by their registry UUID, not their number: a number can come back (a
registry rebuilt from scratch starts at 1 again), a UUID cannot. Loads follow the server's
loading policy, like every other load.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flavors import LoadedModel
from flavors.policy import LoadingPolicy

from ..monitoring import Observers
from ..registry import ModelRegistry
from .loading import ModelIdentity, identity_of, load_version

_logger = logging.getLogger(__name__)

Install = Callable[[LoadedModel, ModelIdentity], None]


@dataclass
class _Watch:
    uri: str
    current: ModelIdentity
    install: Install
    failed: str | None = None


class ReferenceFollower:
    """Watches moving references by key; :meth:`check` looks once, :meth:`start` keeps looking.

    ``also`` are further checks run on every poll (a many-model server re-lists its registry
    there, so models registered after start are served).
    """

    def __init__(self, registry_root: str | None, poll_seconds: float, policy: LoadingPolicy | None = None,
                 observers: Observers | None = None) -> None:
        self.registry_root = registry_root
        self.poll_seconds = poll_seconds
        self.policy = policy
        self.observers = observers
        self.also: list[Callable[[], None]] = []
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, key: str, uri: str, current: ModelIdentity, install: Install) -> None:
        """Follow ``uri`` for ``key`` (replacing any earlier watch of ``key``)."""
        with self._lock:
            self._watches[key] = _Watch(uri, current, install)

    def unwatch(self, key: str) -> None:
        """Stop following ``key`` (its model was unloaded)."""
        with self._lock:
            self._watches.pop(key, None)

    def current(self, key: str) -> ModelIdentity | None:
        """The version ``key`` was last seen at, if watched."""
        with self._lock:
            watch = self._watches.get(key)
        return watch.current if watch else None

    def check(self) -> list[str]:
        """Look at every watched reference once; return the keys that now serve another version."""
        for extra in self.also:
            try:
                extra()
            except Exception:  # the registry may be briefly unreadable; try at the next poll
                _logger.exception("Periodic check %r failed", extra)
        with self._lock:
            watches = list(self._watches.items())
        return [key for key, watch in watches if self._check(key, watch)]

    def start(self) -> None:
        """Call :meth:`check` every ``poll_seconds`` in a daemon thread (in each worker, after the fork)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="reference-follower", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            self.check()

    def _check(self, key: str, watch: _Watch) -> bool:
        try:
            version = ModelRegistry(self.registry_root).resolve_uri(watch.uri)
        except Exception as exc:  # the registry may be briefly unreadable, or the reference gone
            _logger.warning("Cannot resolve %s: %s; keeping version %s", watch.uri, exc, watch.current.version)
            return False
        identity = identity_of(version)
        if identity.key in (watch.current.key, watch.failed):
            return False
        try:
            model = load_version(version, self.policy, key, self.observers)
        except Exception:
            watch.failed = identity.key
            _logger.exception("Loading %s version %s failed; still serving version %s",
                              identity.name, identity.version, watch.current.version)
            return False
        watch.install(model, identity)  # a model unloaded meanwhile ignores it
        _logger.info("Now serving %s version %s (was %s)", identity.name, identity.version, watch.current.version)
        watch.current, watch.failed = identity, None
        return True
