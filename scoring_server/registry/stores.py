"""Which store a registry URI names: a directory (SQLite), PostgreSQL, or an MLflow tracking server.

Every registry user (the ``registry`` commands, ``serve``, followers, ``models:/`` URIs) opens its
store here, so a URI is understood the same way everywhere, and a URI with a scheme this
scoring-server does not serve is refused rather than taken for a directory name.
"""
from __future__ import annotations

from pathlib import Path

from flavors.uri import resolve_model_uri

from .errors import RegistryError
from .mlflow_rest import MLFLOW_SCHEMES, open_mlflow_store
from .store import RegistryStore, SqliteStore

POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(uri: str | None, artifact_root: str | None = None) -> tuple[RegistryStore, Path]:
    """The store ``uri`` names, and the local directory where its version files are (or are cached)."""
    value = str(uri)
    scheme = _scheme(value)
    if scheme in ("", "file"):
        root = local_root(value)
        return SqliteStore(root), root
    if scheme in POSTGRES_SCHEMES:
        from .postgres import open_postgres_store  # psycopg: only for a PostgreSQL registry

        return open_postgres_store(value, artifact_root)
    if scheme in MLFLOW_SCHEMES:  # artifact_root: where downloaded versions are cached
        return open_mlflow_store(value, artifact_root)
    raise RegistryError(f"registry URI scheme {scheme!r} is not supported: use a directory, postgresql://..., "
                        "or http(s):// of an MLflow tracking server")


def local_root(value: str) -> Path:
    """The directory of an embedded registry given as a path or a ``file:`` URI."""
    return resolve_model_uri(value) if value.startswith("file:") else Path(value).expanduser().resolve()


def _scheme(value: str) -> str:
    """The URI scheme, or "" for a plain path (``C:\\x`` style drive letters are paths, not schemes)."""
    scheme, sep, _ = value.partition("://")
    if not sep:
        return "file" if value.startswith("file:") else ""
    return scheme.lower()
