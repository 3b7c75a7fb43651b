"""Where the served model comes from: a model directory, or a ``models:/`` registry reference,
which a :class:`ModelFollower` keeps up to date without a restart."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flavors import LoadedModel, load_model

from .registry import ModelRegistry, parse_models_uri

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


def is_moving_reference(uri: str) -> bool:
    """A registry stage, alias or ``latest``: the version behind it can change while serving."""
    return uri.startswith("models:") and parse_models_uri(uri).moving


class ModelFollower:
    """Polls a moving registry reference; when it points at another version, loads that version
    in the background and hands it to ``install``. A version that fails to load is logged and the
    current one keeps serving (it is tried again when the reference moves again)."""

    def __init__(self, uri: str, registry_root: str | None, current: ModelIdentity,
                 install: Callable[[LoadedModel, ModelIdentity], None]) -> None:
        self.uri = uri
        self.registry_root = registry_root
        self.current = current
        self._install = install
        self._failed: str | None = None
        self._thread: threading.Thread | None = None

    def start(self, poll_seconds: float) -> None:
        """Call :meth:`check` every ``poll_seconds`` in a daemon thread (start it in each worker
        process, after the fork)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(poll_seconds,), name="model-follower",
                                            daemon=True)
            self._thread.start()

    def check(self) -> bool:
        """Look once; return True if a new version was installed."""
        try:
            version = ModelRegistry(self.registry_root).resolve_uri(self.uri)
        except Exception as exc:  # the registry may be briefly unreadable, or the reference gone
            _logger.warning("Cannot resolve %s: %s; keeping version %s", self.uri, exc, self.current.version)
            return False
        identity = ModelIdentity(version.name, str(version.version))
        if identity.version in (self.current.version, self._failed):
            return False
        try:
            model = load_model(version.path)
            self._install(model, identity)
        except Exception:
            self._failed = identity.version
            _logger.exception("Loading %s version %s failed; still serving version %s",
                              identity.name, identity.version, self.current.version)
            return False
        _logger.info("Now serving %s version %s (was %s)", identity.name, identity.version, self.current.version)
        self.current, self._failed = identity, None
        return True

    def _run(self, poll_seconds: float) -> None:
        while True:
            self.check()
            time.sleep(poll_seconds)
