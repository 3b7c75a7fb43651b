"""The model registry: names, versions, stages, aliases, tags, and ``models:/`` resolution.

Registering copies the model directory into the registry root, so later edits to the source
cannot change a registered version. Until the copy is complete the version is pending, and a
pending version is never resolved. A registering process holds an exclusive ``flock`` on a lock
file of its version for as long as the version is pending: when the process dies (even by
SIGKILL) the kernel releases it, and the next write to the registry deletes the abandoned
version and its partial copy. A pending version without a lock file (left by an older
scoring-server) is abandoned once older than ``pending_timeout_seconds``.
"""
from __future__ import annotations

import fcntl
import functools
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flavors.errors import ModelLoadError
from flavors.uri import resolve_model_uri

from ..config import env_var
from .errors import RegistryError
from .names import ModelReference, canonical_stage, check_alias, check_name, parse_models_uri
from .store import ModelVersion, RegisteredModel, RegistryStore
from .stores import local_root, open_store

#: A pending version whose registering process cannot be checked (no lock file) is abandoned after this.
PENDING_TIMEOUT_SECONDS = 3600.0
_STAGING = ".staging-"

ROOT_ENV = env_var("registry_uri")
DEPRECATED_ROOT_ENV = "SCORING_REGISTRY_URI"
ARTIFACT_ROOT_ENV = env_var("artifact_root")
DEFAULT_ROOT = "~/.scoring-server/registry"

_logger = logging.getLogger(__name__)


def registry_uri(root: str | Path | None = None) -> str:
    """The registry URI: the argument, else ``$SCORING_SERVER_REGISTRY_URI``, else ``~/.scoring-server/registry``.

    The variable is the server's ``registry_uri`` setting, so ``scoring-server registry``, ``serve`` and
    ``models:/`` URIs given to ``predict`` all find the same registry.
    """
    return str(root or os.environ.get(ROOT_ENV) or _deprecated_root() or DEFAULT_ROOT)


def registry_root(root: str | Path | None = None) -> Path:
    """The directory of the embedded registry :func:`registry_uri` names."""
    return local_root(registry_uri(root))


def _deprecated_root() -> str | None:
    """``$SCORING_REGISTRY_URI``, the registry's own name for the root before it joined the server settings."""
    value = os.environ.get(DEPRECATED_ROOT_ENV)
    if value:
        _warn_deprecated(value)
    return value


@functools.cache
def _warn_deprecated(value: str) -> None:
    """Once per value: a follower resolves the root at every poll and must not flood the log."""
    _logger.warning("%s is deprecated; set %s=%s instead", DEPRECATED_ROOT_ENV, ROOT_ENV, value)


class ModelRegistry:
    """Registry operations over a :class:`RegistryStore` (the embedded SQLite one by default)."""

    def __init__(self, root: str | Path | None = None, store: RegistryStore | None = None,
                 pending_timeout_seconds: float = PENDING_TIMEOUT_SECONDS, artifact_root: str | None = None) -> None:
        """``artifact_root`` (default ``$SCORING_SERVER_ARTIFACT_ROOT``): where a shared registry's files are."""
        if store is None:
            store, self.root = open_store(registry_uri(root), artifact_root or os.environ.get(ARTIFACT_ROOT_ENV))
        else:
            self.root = registry_root(root)
        self.store = store
        self.pending_timeout_seconds = pending_timeout_seconds

    # --- registered models -------------------------------------------------------------

    def create_model(self, name: str, description: str = "", tags: dict | None = None) -> RegisteredModel:
        return self.store.create_model(check_name(name), description, tags or {})

    def get_model(self, name: str) -> RegisteredModel:
        return self.store.get_model(name)

    def list_models(self) -> list[RegisteredModel]:
        return self.store.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.store.list_versions(name)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self.store.get_version(name, version)

    # --- versions ----------------------------------------------------------------------

    def register(self, name: str, source: str, description: str = "", tags: dict | None = None) -> ModelVersion:
        """Copy the model directory at ``source`` into the registry as the next version of ``name``."""
        from flavors.mlmodel import read_mlmodel  # pandas (signatures): only when registering

        check_name(name)
        try:
            source_dir = resolve_model_uri(source)
            read_mlmodel(source_dir)
        except ModelLoadError as exc:
            raise RegistryError(f"cannot register {source!r}: {exc}") from None
        self.recover_pending()
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        version_uuid = uuid.uuid4().hex
        with _held(self._lock_file(name, version_uuid)):  # held until the version is READY or gone
            reserved = self.store.reserve_version(name, str(source_dir), description, tags or {}, version_uuid)
            staging, target = self._staging(name, version_uuid), folder / str(reserved.version)
            try:
                if target.exists():  # the number is this registration's alone: whatever is there is debris
                    _logger.warning("Removing %s, left by an earlier registration that did not complete", target)
                    shutil.rmtree(target)
                shutil.copytree(source_dir, staging)
                staging.rename(target)
                return self.store.complete_version(name, reserved.version, str(target))
            except BaseException:
                if not self._is_servable(name, reserved.version):  # interrupted before it was READY
                    shutil.rmtree(staging, ignore_errors=True)
                    shutil.rmtree(target, ignore_errors=True)
                    try:
                        self.store.delete_version(name, reserved.version)
                    except RegistryError:
                        pass  # expired or deleted meanwhile
                raise

    def recover_pending(self) -> list[ModelVersion]:
        """Delete the versions whose registration was abandoned (the registering process died, or,
        without a lock file, the version is older than ``pending_timeout_seconds``) and their
        partial copies; also remove staging directories that no registration owns. Run before
        every registration and deletion; returns the versions deleted."""
        expired = self.store.expire_pending(self._abandoned)
        for version in expired:
            _logger.warning("Deleting version %s of %s: its registration was abandoned", version.version, version.name)
            shutil.rmtree(self._staging(version.name, version.uuid), ignore_errors=True)
            shutil.rmtree(self._folder(version.name) / str(version.version), ignore_errors=True)
            _unlink(self._lock_file(version.name, version.uuid))
        self._sweep_staging()
        return expired

    def transition(self, name: str, version: int, stage: str, archive_existing: bool = False) -> ModelVersion:
        """Move a version to a stage; ``archive_existing`` archives the versions already there."""
        return self.store.update_version(name, version, stage=canonical_stage(stage),
                                         archive_others_in_stage=archive_existing)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.store.set_alias(name, check_alias(alias), version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias)

    def set_tag(self, name: str, key: str, value: str, version: int | None = None) -> None:
        """Tag the registered model, or one of its versions."""
        if version is None:
            self.store.update_model(name, tags={**self.store.get_model(name).tags, key: value})
        else:
            self.store.update_version(name, version, tags={**self.store.get_version(name, version).tags, key: value})

    def describe(self, name: str, description: str, version: int | None = None) -> None:
        """Set the description of the registered model, or of one of its versions."""
        if version is None:
            self.store.update_model(name, description=description)
        else:
            self.store.update_version(name, version, description=description)

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version and its files; refused while an alias points to it.

        Its number is not given to another version: a server following ``latest`` sees a new
        number (and UUID) when a model is registered again.
        """
        self.recover_pending()
        path = self.store.get_version(name, version).path
        self.store.delete_version(name, version)
        if path:
            shutil.rmtree(path, ignore_errors=True)

    # --- resolution --------------------------------------------------------------------

    def resolve(self, reference: ModelReference) -> ModelVersion:
        """The version a reference points at now; only a completely registered one."""
        if reference.version is not None:
            return _servable(self.store.get_version(reference.name, reference.version))
        if reference.alias is not None:
            aliases = self.store.get_model(reference.name).aliases
            if reference.alias not in aliases:
                raise RegistryError(f"model {reference.name!r} has no alias {reference.alias!r}")
            return _servable(self.store.get_version(reference.name, aliases[reference.alias]))
        ready = [v for v in self.store.list_versions(reference.name) if v.servable]
        if reference.stage is not None:
            ready = [v for v in ready if v.stage == reference.stage]
        if not ready:
            where = f" in stage {reference.stage}" if reference.stage else ""
            raise RegistryError(f"model {reference.name!r} has no version{where}")
        return ready[-1]

    def resolve_uri(self, uri: str) -> ModelVersion:
        """The version ``uri`` points at now, with its files on this machine: a store whose files are
        elsewhere (an MLflow tracking server) fetches them here, once per version."""
        return self.store.fetch(self.resolve(parse_models_uri(uri)))

    # --- files ---------------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        return self.root / "models" / check_name(name)

    def _staging(self, name: str, version_uuid: str) -> Path:
        return self._folder(name) / f"{_STAGING}{version_uuid}"

    def _lock_file(self, name: str, version_uuid: str) -> Path:
        return self._folder(name) / f"{_STAGING}{version_uuid}.lock"

    def _is_servable(self, name: str, version: int) -> bool:
        try:
            return self.store.get_version(name, version).servable
        except RegistryError:
            return False

    def _abandoned(self, version: ModelVersion) -> bool:
        """A pending version whose registering process is gone (its lock is free), or that has no
        lock file to tell and is older than the timeout."""
        free = _lock_is_free(self._lock_file(version.name, version.uuid)) if version.uuid else None
        if free is not None:
            return free
        return time.time() - version.created_at > self.pending_timeout_seconds

    def _sweep_staging(self) -> None:
        """Remove what no live registration owns: staging directories of processes that died after
        their version was deleted (their lock is free, their version not pending), and, past the
        timeout, free lock files and the staging directories of older scoring-servers (``.N-*``)."""
        pending = {version.uuid for version in self.store.pending_versions()}
        now = time.time()
        for entry in self.root.glob("models/*/.*"):
            name = entry.name
            if name.startswith(_STAGING) and not name.endswith(".lock"):
                version_uuid = name[len(_STAGING):]
                lock = entry.parent / f"{name}.lock"
                if version_uuid not in pending and _lock_is_free(lock) is not False:
                    _remove(entry)
            elif name.startswith(_STAGING) or name[1:].partition("-")[0].isdigit():
                try:
                    old = now - entry.lstat().st_mtime > self.pending_timeout_seconds
                except OSError:
                    continue
                if old and (not name.endswith(".lock") or _lock_is_free(entry)):
                    _remove(entry)


def _servable(version: ModelVersion) -> ModelVersion:
    if not version.servable:
        raise RegistryError(f"model {version.name!r} has no version {version.version} "
                            "(its registration has not completed)")
    return version


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """Create ``path`` and hold an exclusive flock on it for the duration (the kernel releases it if
    the process dies); the file is removed at the end."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        _unlink(path)
        os.close(fd)


def _lock_is_free(path: Path) -> bool | None:
    """Whether nobody holds ``path``'s flock (its owner is gone); None if there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink(path)
