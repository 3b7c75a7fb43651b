"""The model registry: names, versions, stages, aliases, tags, and ``models:/`` resolution.

Registering copies the model directory into the registry root, so later edits to the source
cannot change a registered version.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path

from flavors.errors import ModelLoadError
from flavors.uri import resolve_model_uri

from ..config import env_var
from .errors import RegistryError
from .names import ModelReference, canonical_stage, check_alias, check_name, parse_models_uri
from .store import READY, ModelVersion, RegisteredModel, RegistryStore, SqliteStore

ROOT_ENV = env_var("registry_uri")
DEPRECATED_ROOT_ENV = "SCORING_REGISTRY_URI"
DEFAULT_ROOT = "~/.scoring-server/registry"

_logger = logging.getLogger(__name__)


def registry_root(root: str | Path | None = None) -> Path:
    """The registry root: the argument, else ``$SCORING_SERVER_REGISTRY_URI``, else ``~/.scoring-server/registry``.

    The variable is the server's ``registry_uri`` setting, so ``scoring-server registry``, ``serve`` and
    ``models:/`` URIs given to ``predict`` all find the same registry.
    """
    value = str(root or os.environ.get(ROOT_ENV) or _deprecated_root() or DEFAULT_ROOT)
    return resolve_model_uri(value) if value.startswith("file:") else Path(value).expanduser().resolve()


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

    def __init__(self, root: str | Path | None = None, store: RegistryStore | None = None) -> None:
        self.root = registry_root(root)
        self.store = store or SqliteStore(self.root)

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
        reserved = self.store.reserve_version(name, str(source_dir), description, tags or {})
        try:
            path = self._copy_in(source_dir, name, reserved.version)
        except BaseException:
            self.store.delete_version(name, reserved.version)
            raise
        return self.store.complete_version(name, reserved.version, str(path))

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
        """Delete a version and its files; refused while an alias points to it."""
        path = self.store.get_version(name, version).path
        self.store.delete_version(name, version)
        if path:
            shutil.rmtree(path, ignore_errors=True)

    # --- resolution --------------------------------------------------------------------

    def resolve(self, reference: ModelReference) -> ModelVersion:
        """The version a reference points at now."""
        if reference.version is not None:
            return self.store.get_version(reference.name, reference.version)
        if reference.alias is not None:
            aliases = self.store.get_model(reference.name).aliases
            if reference.alias not in aliases:
                raise RegistryError(f"model {reference.name!r} has no alias {reference.alias!r}")
            return self.store.get_version(reference.name, aliases[reference.alias])
        ready = [v for v in self.store.list_versions(reference.name) if v.status == READY]
        if reference.stage is not None:
            ready = [v for v in ready if v.stage == reference.stage]
        if not ready:
            where = f" in stage {reference.stage}" if reference.stage else ""
            raise RegistryError(f"model {reference.name!r} has no version{where}")
        return ready[-1]

    def resolve_uri(self, uri: str) -> ModelVersion:
        return self.resolve(parse_models_uri(uri))

    def _copy_in(self, source_dir: Path, name: str, version: int) -> Path:
        target = self.root / "models" / name / str(version)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        shutil.copytree(source_dir, staging, dirs_exist_ok=True)
        staging.rename(target)
        return target
