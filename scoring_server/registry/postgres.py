"""The registry on PostgreSQL, for several machines: one database, and an artifact root every replica reads.

Each operation is one transaction on its own connection. Version numbers come from a per-model
counter read with ``SELECT ... FOR UPDATE``, so registrations on different machines get distinct,
gap-free numbers that are never given twice. A registration holds a session-level advisory lock
(keyed by its version's UUID) on a connection of its own until its version is READY: when the
registering process dies, PostgreSQL ends the session and frees the lock, which is how the next
write knows the pending version was abandoned (lock files do not work across machines).

Version files live under the artifact root (``models/NAME/VERSION``); the database records their
path relative to it, so machines that mount it at different places all find them.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import RegistryError
from .store import PENDING, READY, VERSION_COLUMNS, ModelVersion, SqlStore, version_of

try:
    import psycopg
except ImportError:  # the extra is optional: only a PostgreSQL registry needs it
    psycopg = None

#: The layout this code reads and writes; see :data:`_MIGRATIONS`.
SCHEMA_VERSION = 1
#: Key of the advisory lock that makes concurrent first starts migrate once.
_MIGRATION_LOCK = 0x5C0_8E61

_SCHEMA_V1 = """
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    next_version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name), version INTEGER NOT NULL, source TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT 'None', description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    path TEXT NOT NULL DEFAULT '', uuid TEXT NOT NULL UNIQUE, PRIMARY KEY (name, version));
CREATE TABLE aliases (
    name TEXT NOT NULL REFERENCES registered_models(name), alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias));
"""

#: Layout version → the SQL that brings the layout before it there (run in the migration's transaction).
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}
#: URIs whose schema is known to be current in this process: a follower opens the registry at every poll.
_migrated: set[str] = set()


def open_postgres_store(uri: str, artifact_root: str | None) -> tuple[PostgresStore, Path]:
    """The store at ``uri`` (``postgres://`` is taken as ``postgresql://``) and its artifact root."""
    if psycopg is None:
        raise RegistryError("a postgresql:// registry needs psycopg: pip install 'scoring-server[postgres]'")
    if not artifact_root:
        raise RegistryError("a postgresql:// registry needs an artifact root every replica reads: give "
                            "--artifact-root DIR or set SCORING_SERVER_ARTIFACT_ROOT")
    root = Path(artifact_root).expanduser().resolve()
    return PostgresStore("postgresql" + uri[uri.index(":"):], root), root


def redacted(uri: str) -> str:
    """``uri`` without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _Cursor:
    """A psycopg cursor that also takes the ``?`` placeholders the shared SQL (:class:`SqlStore`) is written with."""

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: tuple = ()) -> psycopg.Cursor:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def __getattr__(self, name: str) -> object:
        return getattr(self._cursor, name)


def _lock_key(version_uuid: str) -> int:
    """A signed 64-bit advisory lock key from a version's UUID."""
    return int(version_uuid[:16], 16) - (1 << 63)


class PostgresStore(SqlStore):
    """A :class:`~scoring_server.registry.store.RegistryStore` in a PostgreSQL database."""

    row_lock = " FOR UPDATE"

    def __init__(self, uri: str, root: Path) -> None:
        self.uri, self.root = uri, root
        self._registrations: dict[str, psycopg.Connection] = {}  # version UUID → connection holding its lock
        if uri not in _migrated:
            self._migrate()
            _migrated.add(uri)

    def __str__(self) -> str:
        return redacted(self.uri)

    def _connect(self, **kwargs) -> psycopg.Connection:
        try:
            return psycopg.connect(self.uri, connect_timeout=10, **kwargs)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RegistryError(f"cannot connect to the registry {self}: {reason.replace(self.uri, str(self))}") from None

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        """One transaction: committed at the end, rolled back on error."""
        with self._connect() as conn, conn.cursor() as cur:  # the connection's block commits or rolls back
            yield _Cursor(cur)

    _read = _write = _transaction

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` in one transaction, under an advisory lock so that
        replicas starting at once migrate once."""
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise RegistryError(f"the registry {self} has layout {current}, newer than this scoring-server "
                                    f"reads ({SCHEMA_VERSION}): upgrade scoring-server")
            for target in range(current + 1, SCHEMA_VERSION + 1):
                cur.execute(_MIGRATIONS[target])
            if row is None:
                cur.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
            elif current < SCHEMA_VERSION:
                cur.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))

    @property
    def schema_version(self) -> int:
        with self._transaction() as cur:
            return cur.execute("SELECT version FROM schema_version").fetchone()[0]

    # --- versions ----------------------------------------------------------------------

    def reserve_version(self, name: str, source: str, description: str, tags: dict, uuid: str) -> ModelVersion:
        """The next version number of ``name``, recorded as pending with ``uuid``; this store holds the
        version's advisory lock until :meth:`complete_version` or :meth:`delete_version`."""
        owner = self._connect(autocommit=True)
        owner.execute("SELECT pg_advisory_lock(%s)", (_lock_key(uuid),))
        self._registrations[uuid] = owner
        now = time.time()
        try:
            with self._transaction() as cur:
                cur.execute("INSERT INTO registered_models (name, created_at, updated_at) VALUES (%s, %s, %s) "
                            "ON CONFLICT DO NOTHING", (name, now, now))
                version = cur.execute("SELECT next_version FROM registered_models WHERE name = %s FOR UPDATE",
                                      (name,)).fetchone()[0]
                cur.execute(f"INSERT INTO model_versions ({VERSION_COLUMNS}) "
                            "VALUES (%s, %s, %s, 'None', %s, %s, %s, %s, %s, '', %s)",
                            (name, version, source, description, json.dumps(tags), PENDING, now, now, uuid))
                cur.execute("UPDATE registered_models SET next_version = %s, updated_at = %s WHERE name = %s",
                            (version + 1, now, name))
        except BaseException:
            self._release(uuid)
            raise
        return self.get_version(name, version)

    def complete_version(self, name: str, version: int, path: str) -> ModelVersion:
        """Mark a pending version READY at ``path``; refused if it is no longer pending (expired, deleted)."""
        with self._transaction() as cur:
            cur.execute("UPDATE model_versions SET status = %s, path = %s, updated_at = %s "
                        "WHERE name = %s AND version = %s AND status = %s RETURNING uuid",
                        (READY, self._relative(path), time.time(), name, version, PENDING))
            row = cur.fetchone()
            if row is None:
                raise RegistryError(f"version {version} of {name!r} is no longer pending: its registration was "
                                    "expired or deleted meanwhile")
        self._release(row[0])
        return self.get_version(name, version)

    def expire_pending(self, is_stale: Callable[[ModelVersion], bool]) -> list[ModelVersion]:
        """Delete the pending versions whose registering session is gone (their advisory lock is free);
        ``is_stale`` (lock files, which do not work across machines) is not needed here."""
        with self._transaction() as cur:
            return self._expire_in(cur, lambda version: cur.execute(
                "SELECT pg_try_advisory_xact_lock(?)", (_lock_key(version.uuid),)).fetchone()[0])

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version, pending or ready; refused while an alias points to it."""
        with self._transaction() as cur:
            self._require_model(cur, name, lock=True)
            row = cur.execute("DELETE FROM model_versions WHERE name = %s AND version = %s RETURNING uuid",
                              (name, version)).fetchone()
            if row is None:
                raise RegistryError(f"model {name!r} has no version {version}")
            self._refuse_aliased(cur, name, version)
        self._release(row[0])

    def _release(self, version_uuid: str) -> None:
        """End a registration's session, which frees its advisory lock."""
        owner = self._registrations.pop(version_uuid, None)
        if owner is not None:
            owner.close()

    def _relative(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return path

    def _version(self, row: tuple) -> ModelVersion:
        return version_of(row, str(self.root / row[9]) if row[9] else "")
