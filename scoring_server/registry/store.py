"""Registry storage: a small interface, the operations every SQL store shares (:class:`SqlStore`),
and the embedded implementation on SQLite.

The embedded store keeps a SQLite database (WAL mode, so readers never wait for a writer) and
the registered model directories side by side under one root. Anything that implements
:class:`RegistryStore` (a shared database for several machines, say) can replace it.

The database's layout has a version (``PRAGMA user_version``); opening an older one migrates it
in one write transaction, so that processes opening it at once migrate it once. Version 1 gives
each registered model a counter of version numbers (a number is never given twice, even after
its version is deleted) and each version a UUID (an identity no other version ever has, even
in a registry rebuilt from scratch): followers compare UUIDs, not numbers.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

from .errors import RegistryError

READY = "READY"
PENDING = "PENDING_REGISTRATION"
#: The layout this code reads and writes; see :data:`_MIGRATIONS`.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RegisteredModel:
    """A name under which versions of a model are registered."""

    name: str
    description: str = ""
    tags: dict = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    aliases: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: a copy of a model directory, with its stage and metadata."""

    name: str
    version: int
    source: str
    stage: str = "None"
    description: str = ""
    tags: dict = field(default_factory=dict)
    status: str = READY
    created_at: float = 0.0
    updated_at: float = 0.0
    path: str = ""
    uuid: str = ""

    @property
    def servable(self) -> bool:
        """Registered completely: READY, with its copy in place (a pending version has no files yet)."""
        return self.status == READY and bool(self.path)


class RegistryStore(Protocol):
    """What the registry needs from its storage; every method is atomic."""

    def create_model(self, name: str, description: str, tags: dict) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(self) -> list[RegisteredModel]: ...
    def update_model(self, name: str, *, description: str | None = None, tags: dict | None = None) -> None: ...
    def reserve_version(self, name: str, source: str, description: str, tags: dict, uuid: str) -> ModelVersion: ...
    def complete_version(self, name: str, version: int, path: str) -> ModelVersion: ...
    def expire_pending(self, is_stale: Callable[[ModelVersion], bool]) -> list[ModelVersion]: ...
    def pending_versions(self) -> list[ModelVersion]: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def list_versions(self, name: str) -> list[ModelVersion]: ...
    def update_version(self, name: str, version: int, *, stage: str | None = None,
                       description: str | None = None, tags: dict | None = None,
                       archive_others_in_stage: bool = False) -> ModelVersion: ...
    def delete_version(self, name: str, version: int) -> None: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def fetch(self, version: ModelVersion) -> ModelVersion:
        """``version`` with its files on this machine (a store whose files are elsewhere downloads them)."""
        ...


#: Layout 0, the first one: what a new registry starts from before :data:`_MIGRATIONS` run.
_SCHEMA_V0 = """
CREATE TABLE IF NOT EXISTS registered_models (
    name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name), version INTEGER NOT NULL, source TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT 'None', description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, path TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL REFERENCES registered_models(name), alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias));
"""


def _migrate_to_1(db: sqlite3.Connection) -> None:
    """A version-number counter per model, and a UUID per version.

    The counter starts after the highest version still recorded: numbers of versions deleted
    before this migration cannot be known (their rows are gone), which is why followers compare
    UUIDs, which cannot repeat.
    """
    db.execute("ALTER TABLE registered_models ADD COLUMN next_version INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE model_versions ADD COLUMN uuid TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE registered_models SET next_version = 1 + COALESCE("
               "(SELECT MAX(version) FROM model_versions WHERE model_versions.name = registered_models.name), 0)")
    for (rowid,) in db.execute("SELECT rowid FROM model_versions").fetchall():
        db.execute("UPDATE model_versions SET uuid = ? WHERE rowid = ?", (uuidlib.uuid4().hex, rowid))
    db.execute("CREATE UNIQUE INDEX model_versions_uuid ON model_versions(uuid)")


#: Layout version → the step that brings the layout before it there, in one transaction.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_to_1}
VERSION_COLUMNS = "name, version, source, stage, description, tags, status, created_at, updated_at, path, uuid"


class SqlStore:
    """Registered models, versions and aliases in the tables ``registered_models``, ``model_versions``
    and ``aliases``."""

    #: Appended to a read of a model's row that must hold it until the transaction ends ("" where a
    #: write transaction already serializes every writer).
    row_lock = ""

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _has_tables(self) -> bool:
        """Whether there is anything to read yet (a registry is made by its first write)."""
        return True

    def fetch(self, version: ModelVersion) -> ModelVersion:
        """The files of a SQL store's versions are where every machine reads them already."""
        return version

    def _version(self, row: tuple) -> ModelVersion:
        return version_of(row, row[9])

    # --- registered models -------------------------------------------------------------

    def create_model(self, name: str, description: str, tags: dict) -> RegisteredModel:
        now = time.time()
        with self._write() as db:
            added = db.execute("INSERT INTO registered_models (name, description, tags, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               (name, description, json.dumps(tags), now, now)).rowcount
            if not added:
                raise RegistryError(f"registered model {name!r} already exists")
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self._read() as db:
            row = db.execute("SELECT name, description, tags, created_at, updated_at FROM registered_models "
                             "WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise RegistryError(self._no_model(name))
            aliases = dict(db.execute("SELECT alias, version FROM aliases WHERE name = ? ORDER BY alias",
                                      (name,)).fetchall())
        return RegisteredModel(row[0], row[1], json.loads(row[2]), row[3], row[4], aliases)

    def list_models(self) -> list[RegisteredModel]:
        if not self._has_tables():  # a server following every registered model may start before the first is
            return []
        with self._read() as db:
            names = [row[0] for row in db.execute("SELECT name FROM registered_models ORDER BY name", ()).fetchall()]
        return [self.get_model(name) for name in names]

    def update_model(self, name: str, *, description: str | None = None, tags: dict | None = None) -> None:
        with self._write() as db:
            self._require_model(db, name)
            if description is not None:
                db.execute("UPDATE registered_models SET description = ? WHERE name = ?", (description, name))
            if tags is not None:
                db.execute("UPDATE registered_models SET tags = ? WHERE name = ?", (json.dumps(tags), name))
            db.execute("UPDATE registered_models SET updated_at = ? WHERE name = ?", (time.time(), name))

    # --- versions ----------------------------------------------------------------------

    def pending_versions(self) -> list[ModelVersion]:
        """Every version whose registration has not completed."""
        if not self._has_tables():
            return []
        with self._read() as db:
            return [self._version(row) for row in db.execute(
                f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE status = ?", (PENDING,)).fetchall()]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as db:
            row = db.execute(f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE name = ? AND version = ?",
                             (name, version)).fetchone()
            if row is None:
                self._require_model(db, name)
                raise RegistryError(f"model {name!r} has no version {version}")
        return self._version(row)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._read() as db:
            self._require_model(db, name)
            rows = db.execute(f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE name = ? ORDER BY version",
                              (name,)).fetchall()
        return [self._version(row) for row in rows]

    def update_version(self, name: str, version: int, *, stage: str | None = None,
                       description: str | None = None, tags: dict | None = None,
                       archive_others_in_stage: bool = False) -> ModelVersion:
        now = time.time()
        with self._write() as db:
            self._require_version(db, name, version)
            if stage is not None:
                if archive_others_in_stage and stage in ("Staging", "Production"):
                    db.execute("UPDATE model_versions SET stage = 'Archived', updated_at = ? "
                               "WHERE name = ? AND stage = ? AND version != ?", (now, name, stage, version))
                db.execute("UPDATE model_versions SET stage = ? WHERE name = ? AND version = ?", (stage, name, version))
            if description is not None:
                db.execute("UPDATE model_versions SET description = ? WHERE name = ? AND version = ?",
                           (description, name, version))
            if tags is not None:
                db.execute("UPDATE model_versions SET tags = ? WHERE name = ? AND version = ?",
                           (json.dumps(tags), name, version))
            db.execute("UPDATE model_versions SET updated_at = ? WHERE name = ? AND version = ?", (now, name, version))
        return self.get_version(name, version)

    def _expire_in(self, db: Any, is_stale: Callable[[ModelVersion], bool]) -> list[ModelVersion]:
        """In a write transaction: delete the pending versions ``is_stale`` picks, and return them."""
        pending = [self._version(row) for row in db.execute(
            f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE status = ?{self.row_lock}", (PENDING,)).fetchall()]
        stale = [version for version in pending if is_stale(version)]
        for version in stale:
            db.execute("DELETE FROM model_versions WHERE name = ? AND version = ? AND status = ?",
                       (version.name, version.version, PENDING))
        return stale

    def _refuse_aliased(self, db: Any, name: str, version: int) -> None:
        """A version an alias points to is not deleted."""
        aliases = [row[0] for row in db.execute("SELECT alias FROM aliases WHERE name = ? AND version = ?",
                                                (name, version)).fetchall()]
        if aliases:
            raise RegistryError(f"version {version} of {name!r} is pointed to by alias(es) {aliases}; "
                                "move or delete them first")

    # --- aliases -----------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self._write() as db:
            self._require_version(db, name, version, lock=True)
            db.execute("INSERT INTO aliases VALUES (?, ?, ?) ON CONFLICT (name, alias) "
                       "DO UPDATE SET version = excluded.version", (name, alias, version))

    def delete_alias(self, name: str, alias: str) -> None:
        with self._write() as db:
            self._require_model(db, name)
            if db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias)).rowcount == 0:
                raise RegistryError(f"model {name!r} has no alias {alias!r}")

    # --- checks ------------------------------------------------------------------------

    def _require_model(self, db: Any, name: str, lock: bool = False) -> None:
        """``lock``: hold the model's row, so that deleting a version and aliasing it cannot interleave."""
        suffix = self.row_lock if lock else ""
        if not db.execute(f"SELECT 1 FROM registered_models WHERE name = ?{suffix}", (name,)).fetchone():
            raise RegistryError(self._no_model(name))

    def _no_model(self, name: str) -> str:
        return f"registered model {name!r} does not exist in the registry {self}"

    def _require_version(self, db: Any, name: str, version: int, lock: bool = False) -> None:
        self._require_model(db, name, lock)
        row = db.execute("SELECT status FROM model_versions WHERE name = ? AND version = ?", (name, version)).fetchone()
        if row is None or row[0] != READY:
            raise RegistryError(f"model {name!r} has no version {version}")


def version_of(row: tuple, path: str) -> ModelVersion:
    """A ``model_versions`` row (:data:`_VERSION_COLUMNS`) as a version whose files are at ``path``."""
    return ModelVersion(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7], row[8], path,
                        row[10])


class SqliteStore(SqlStore):
    """The embedded store: ``<root>/registry.db``; model copies live beside it (see ``ModelRegistry``)."""

    def __init__(self, root: Path) -> None:
        """Opens an existing registry; a missing one is made by the first write, never by a read."""
        self.root = root
        self.path = root / "registry.db"
        self._opened = False
        if self.exists:
            self._open()

    def _open(self) -> None:
        """Make the database if missing, and bring its layout to :data:`SCHEMA_VERSION` (once per store: another
        process may have made the file, not yet its tables)."""
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            current = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
        self._opened = True
        if current > SCHEMA_VERSION:
            raise RegistryError(f"the registry {self.root} has layout {current}, newer than this scoring-server "
                                f"reads ({SCHEMA_VERSION}): upgrade scoring-server")
        if current < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Create a new registry's tables, then bring the layout to :data:`SCHEMA_VERSION`."""
        with self._read() as db:
            db.executescript(_SCHEMA_V0)  # CREATE ... IF NOT EXISTS: nothing for an existing registry
        with self._write() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for target in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target](db)
            if current < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        with self._read() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def _has_tables(self) -> bool:
        return self.exists

    def __str__(self) -> str:
        return str(self.root)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection to read; a registry that does not exist is an error naming the root searched."""
        if not self._opened:
            if not self.exists:
                raise RegistryError(f"the registry {self.root} does not exist (give --registry DIR or set "
                                    "SCORING_SERVER_REGISTRY_URI; the first registration makes it)")
            self._open()
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` serializes writers across processes. The first makes the registry."""
        if not self._opened:
            self._open()
        with self._read() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- versions ----------------------------------------------------------------------

    def reserve_version(self, name: str, source: str, description: str, tags: dict, uuid: str) -> ModelVersion:
        """The next version number of ``name``, recorded as pending with ``uuid``.

        Numbers come from the model's counter: distinct across processes, never given twice.
        """
        now = time.time()
        with self._write() as db:
            if not db.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone():
                db.execute("INSERT INTO registered_models (name, created_at, updated_at) VALUES (?, ?, ?)",
                           (name, now, now))
            counter, highest = db.execute(
                "SELECT next_version, (SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE name = ?) "
                "FROM registered_models WHERE name = ?", (name, name)).fetchone()
            version = max(counter, highest + 1)
            db.execute(f"INSERT INTO model_versions ({VERSION_COLUMNS}) VALUES (?, ?, ?, 'None', ?, ?, ?, ?, ?, '', ?)",
                       (name, version, source, description, json.dumps(tags), PENDING, now, now, uuid))
            db.execute("UPDATE registered_models SET next_version = ?, updated_at = ? WHERE name = ?",
                       (version + 1, now, name))
        return self.get_version(name, version)

    def complete_version(self, name: str, version: int, path: str) -> ModelVersion:
        """Mark a pending version READY at ``path``; refused if it is no longer pending (expired, deleted)."""
        with self._write() as db:
            changed = db.execute("UPDATE model_versions SET status = ?, path = ?, updated_at = ? "
                                 "WHERE name = ? AND version = ? AND status = ?",
                                 (READY, path, time.time(), name, version, PENDING)).rowcount
            if not changed:
                raise RegistryError(f"version {version} of {name!r} is no longer pending: its registration was "
                                    "expired or deleted meanwhile")
        return self.get_version(name, version)

    def expire_pending(self, is_stale: Callable[[ModelVersion], bool]) -> list[ModelVersion]:
        """Delete the pending versions ``is_stale`` says were abandoned; return them (their files are the caller's)."""
        if not self.exists:
            return []
        with self._read() as db:  # the usual case, nothing pending, takes no write lock
            if not db.execute("SELECT 1 FROM model_versions WHERE status = ? LIMIT 1", (PENDING,)).fetchone():
                return []
        with self._write() as db:
            return self._expire_in(db, is_stale)

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version, pending or ready; refused while an alias points to it."""
        with self._write() as db:
            self._require_model(db, name)
            if not db.execute("SELECT 1 FROM model_versions WHERE name = ? AND version = ?", (name, version)).fetchone():
                raise RegistryError(f"model {name!r} has no version {version}")
            self._refuse_aliased(db, name, version)
            db.execute("DELETE FROM model_versions WHERE name = ? AND version = ?", (name, version))

