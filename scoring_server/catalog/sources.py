"""Where a many-model server's names come from: a models file, a model root, the registry
(listed again on every poll, so models registered after start are served), and the admin API's
changes, which every worker of the server reads from one file so that all of them agree."""
from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import MODEL_NAME_RULE, ConfigError, ModelEntry, is_model_name
from ..errors import ScoringError
from ..registry import ModelRegistry
from .roots import AllowedRoots

if TYPE_CHECKING:
    from ..config import ServerConfig

_logger = logging.getLogger(__name__)


def entries_from_root(root: str | Path) -> list[ModelEntry]:
    """Every model directory (one with an ``MLmodel``) directly under ``root``, by folder name.

    A folder whose name breaks the model-name rule is skipped with a warning (it could not be
    asked for by name anyway)."""
    entries = []
    for child in sorted(Path(root).iterdir()):
        if not (child / "MLmodel").is_file():
            continue
        if is_model_name(child.name):
            entries.append(ModelEntry(child.name, str(child)))
        else:
            _logger.warning("Not serving %s: a model's name (its folder's) needs %s", child, MODEL_NAME_RULE)
    return entries


def entries_from_registry(registry_root: str | None, alias: str | None) -> list[ModelEntry]:
    """Every registered model, following its Production stage or the given alias."""
    suffix = f"@{alias}" if alias else "/Production"
    return [ModelEntry(model.name, f"models:/{model.name}{suffix}")
            for model in ModelRegistry(registry_root).list_models()]


def admin_changes(config: ServerConfig) -> AdminChanges | None:
    """The admin API's changes when ``admin_api`` is on; it needs ``allowed_model_roots``."""
    if not config.admin_api:
        return None
    if not config.allowed_model_roots:
        raise ConfigError("the admin API (--admin-api) loads models only from directories you allow: give "
                          "--allowed-model-roots DIR[,DIR] (configuration key allowed_model_roots; "
                          "docs/security.md)")
    return AdminChanges(roots=AllowedRoots(config.allowed_model_roots))


class AdminChanges:
    """Models added and removed through the admin API, in a JSON file shared by the workers
    (written under an exclusive lock, replaced atomically, re-read when its mtime changes).

    Added models must be ``models:/`` URIs or model directories inside ``roots`` (see
    :mod:`.roots`); without roots every local directory is refused. The folder is made by the
    server before the fork and removed when the server stops.
    """

    FILE = "catalog-changes.json"

    def __init__(self, folder: Path | None = None, roots: AllowedRoots | None = None) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="scoring-server-"))
        self.path = self.folder / self.FILE
        self.roots = roots or AllowedRoots()
        self._seen: int | None = None
        self._changes: dict = {"added": {}, "removed": []}

    def current(self) -> tuple[dict[str, ModelEntry], set[str]]:
        """Added entries by name, and removed names, as the file says now."""
        try:
            modified = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            modified = None
        if modified != self._seen:
            self._changes = _read(self.path)
            self._seen = modified
        added = {name: ModelEntry(name, spec["uri"], spec.get("protocol"))
                 for name, spec in self._changes["added"].items()}
        return added, set(self._changes["removed"])

    def add(self, entry: ModelEntry, served: set[str]) -> ModelEntry:
        """Record ``entry`` as added (and no longer removed), with its URI as admitted by ``roots``
        (400/403 otherwise); 409 if its name is ``served`` or added. Returns the entry recorded."""
        entry = dataclasses.replace(entry, uri=self.roots.admit(entry.uri))
        with self._edit() as changes:
            if entry.name in served or entry.name in changes["added"]:
                raise ScoringError(f"A model named {entry.name!r} already exists", "RESOURCE_ALREADY_EXISTS", 409)
            changes["added"][entry.name] = {"uri": entry.uri, "protocol": entry.protocol}
            changes["removed"] = [name for name in changes["removed"] if name != entry.name]
        return entry

    def admitted(self, entry: ModelEntry) -> bool:
        """Whether an added entry may still be loaded: a ``models:/`` URI, or a directory whose real
        path is still inside the roots (a symlink changed since it was added does not count)."""
        return entry.uri.startswith("models:") or self.roots.real_model_dir(entry.uri) == entry.uri

    def remove(self, name: str) -> None:
        """Record ``name`` as removed."""
        with self._edit() as changes:
            changes["added"].pop(name, None)
            changes["removed"] = sorted({*changes["removed"], name})

    def delete(self) -> None:
        """Remove the folder (the server is stopping)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextmanager
    def _edit(self) -> Iterator[dict]:
        with open(self.folder / "changes.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            changes = _read(self.path)
            yield changes
            staging = self.path.with_suffix(".tmp")
            staging.write_text(json.dumps(changes))
            staging.replace(self.path)


def _read(path: Path) -> dict:
    try:
        changes = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        changes = {}
    changes.setdefault("added", {})
    changes.setdefault("removed", [])
    return changes


class ModelSources:
    """The served entries: the configured ones, the registry's (when asked for), and admin changes.

    :meth:`entries` is a snapshot; :meth:`refresh_registry` lists the registry again.
    """

    def __init__(self, configured: list[ModelEntry], registry_root: str | None = None,
                 registry_alias: str | None = None, follow_registry: bool = False,
                 admin: AdminChanges | None = None) -> None:
        self._configured = {entry.name: entry for entry in configured}
        self._registry_root, self._registry_alias = registry_root, registry_alias
        self._follow_registry = follow_registry
        self._registered: dict[str, ModelEntry] = {}
        self.admin = admin
        self._lock = threading.Lock()
        if follow_registry:
            self.refresh_registry()

    def refresh_registry(self) -> None:
        """List the registry again (models registered since are served from now on)."""
        if not self._follow_registry:
            return
        found = {entry.name: entry for entry in entries_from_registry(self._registry_root, self._registry_alias)}
        with self._lock:
            self._registered = found

    def entries(self) -> dict[str, ModelEntry]:
        """Every served name → entry, now."""
        with self._lock:
            entries = {**self._registered, **self._configured}
        if self.admin is not None:
            added, removed = self.admin.current()
            entries = {name: entry for name, entry in {**entries, **added}.items() if name not in removed}
        return entries
