"""API keys: making them, the keys file that holds their salted hashes, and checking a presented key.

A key is ``ss_<id>_<secret>``: a public id (12 hex digits, the lookup key) and 256 random bits
from :func:`secrets.token_urlsafe`. Because the secret is random and long, a salted SHA-256 of the
key is as strong as a slow password hash would be, and costs about a microsecond to check on every
request. The file never holds a key, only, per key: its name, id, scopes, creation time and
``sha256$<salt>$<digest>``.

The file is JSON, written only whole (a temporary file renamed over it, mode 0600) under a lock,
so concurrent ``keys create``/``keys revoke`` commands never lose each other's changes and a
server never reads half a file. A server's :class:`KeyStore` looks at the file's inode, size and
mtime at most once per ``check_interval`` seconds per worker and re-reads it when they change.

This module imports neither Flask nor anything heavy: the ``keys`` commands use it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

_logger = logging.getLogger(__name__)

#: Scopes a key may hold (the same as ``scoring_server.security.SCOPES``, which imports Flask).
KNOWN_SCOPES = ("score", "read", "admin")
KEY_PREFIX = "ss_"
FILE_VERSION = 1
#: A presented key longer than this is refused before any hashing.
MAX_KEY_LENGTH = 200
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_KEY_ID = re.compile(r"[0-9a-f]{8,32}\Z")
_HASH = re.compile(r"sha256\$([0-9a-f]{32})\$([0-9a-f]{64})\Z")
#: Hashed for a key whose id is unknown, so that such a key costs what a wrong secret costs.
_DUMMY_SALT = bytes(16)


class KeysError(ValueError):
    """A keys file, key name or scope that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ApiKey:
    """One key as the file holds it: never the key itself."""

    name: str
    key_id: str
    scopes: frozenset[str]
    created: str
    salt: bytes
    digest: bytes

    def to_json(self) -> dict:
        return {"name": self.name, "id": self.key_id, "scopes": sorted(self.scopes), "created": self.created,
                "hash": f"sha256${self.salt.hex()}${self.digest.hex()}"}

    def public(self) -> dict:
        """What ``keys list`` shows: everything but the hash."""
        return {"name": self.name, "id": self.key_id, "scopes": sorted(self.scopes), "created": self.created}


def key_digest(salt: bytes, key: str) -> bytes:
    """The salted SHA-256 of a whole presented key (id and secret)."""
    return hashlib.sha256(salt + key.encode("utf-8", "surrogateescape")).digest()


def key_id_of(presented: str) -> str | None:
    """The id part of a presented key, or None when it does not have the shape of one of ours."""
    if len(presented) > MAX_KEY_LENGTH or not presented.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = presented[len(KEY_PREFIX):].partition("_")
    return key_id if sep and secret else None


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeysError(f"invalid key name {name!r}: use 1 to 64 letters, digits, '.', '_' and '-', "
                        "starting with a letter or digit")
    return name


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    scopes = list(scopes)
    unknown = [scope for scope in scopes if scope not in KNOWN_SCOPES]
    if unknown:
        raise KeysError(f"unknown scope {unknown[0]!r}: use {', '.join(KNOWN_SCOPES)}")
    if not scopes:
        raise KeysError(f"a key needs at least one scope ({', '.join(KNOWN_SCOPES)})")
    return frozenset(scopes)


def new_key(name: str, scopes: Iterable[str], taken_ids: Iterable[str] = ()) -> tuple[str, ApiKey]:
    """A fresh key and the entry the file keeps of it."""
    taken = set(taken_ids)
    key_id = secrets.token_hex(6)
    while key_id in taken:  # 48 bits: practically never loops
        key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return key, ApiKey(check_name(name), key_id, check_scopes(scopes), created, salt, key_digest(salt, key))


# --- the file -----------------------------------------------------------------------------------

def parse_keys(text: str, source: str) -> list[ApiKey]:
    """The keys of a keys file's content, validated; ``source`` names the file in errors."""
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise KeysError(f"API keys file {source} is not valid JSON: {exc}") from None
    if not isinstance(content, dict) or not isinstance(content.get("keys"), list):
        raise KeysError(f'API keys file {source} must hold {{"keys": [...]}} (write it with `scoring-server keys create`)')
    if content.get("version", FILE_VERSION) != FILE_VERSION:
        raise KeysError(f"API keys file {source} has version {content.get('version')!r}; this server reads "
                        f"version {FILE_VERSION}")
    keys, names, ids = [], set(), set()
    for index, item in enumerate(content["keys"]):
        where = f"API keys file {source}, key {index + 1}"
        if not isinstance(item, dict) or not {"name", "id", "scopes", "created", "hash"} <= set(item):
            raise KeysError(f"{where}: needs name, id, scopes, created and hash")
        try:
            name = check_name(item["name"])
            if not isinstance(item["scopes"], list):
                raise KeysError("scopes must be a list")
            scopes = check_scopes(item["scopes"])
        except KeysError as exc:
            raise KeysError(f"{where}: {exc}") from None
        key_id, hashed = item["id"], item["hash"]
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise KeysError(f"{where} ({name}): invalid id")
        match = _HASH.match(hashed) if isinstance(hashed, str) else None
        if match is None:
            raise KeysError(f"{where} ({name}): hash must be sha256$<32 hex digits of salt>$<64 hex digits>")
        if name in names or key_id in ids:
            raise KeysError(f"{where}: the name {name!r} or id {key_id!r} is used twice")
        names.add(name)
        ids.add(key_id)
        keys.append(ApiKey(name, key_id, scopes, str(item["created"]), bytes.fromhex(match[1]),
                           bytes.fromhex(match[2])))
    return keys


def read_keys(path: str | Path) -> list[ApiKey]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysError(f"cannot read API keys file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_keys(text, str(path))


def write_keys(path: str | Path, keys: list[ApiKey]) -> None:
    """Replace the file whole: a temporary file (mode 0600) in the same folder, renamed over it."""
    path = Path(path)
    content = json.dumps({"version": FILE_VERSION, "keys": [key.to_json() for key in keys]}, indent=2) + "\n"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialize changes to the keys file (a lock file beside it: the keys file itself is replaced)."""
    if not path.parent.is_dir():
        raise KeysError(f"cannot write API keys file {path}: no such directory {path.parent}")
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create_key(path: str | Path, name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
    """Add a key named ``name`` to the file (made if missing); returns the key, to be shown once."""
    path = Path(path)
    check_name(name)
    with _locked(path):
        keys = read_keys(path) if path.exists() else []
        if any(key.name == name for key in keys):
            raise KeysError(f"a key named {name!r} exists already in {path} (revoke it first, or pick another name)")
        key, entry = new_key(name, scopes, (key.key_id for key in keys))
        write_keys(path, [*keys, entry])
    return key, entry


def revoke_key(path: str | Path, name: str) -> ApiKey:
    """Remove the key named ``name`` from the file."""
    path = Path(path)
    with _locked(path):
        keys = read_keys(path)
        revoked = [key for key in keys if key.name == name]
        if not revoked:
            raise KeysError(f"no key named {name!r} in {path}")
        write_keys(path, [key for key in keys if key.name != name])
    return revoked[0]


# --- the server's view --------------------------------------------------------------------------

class KeyStore:
    """The keys a server accepts, re-read from its file when the file changes.

    :meth:`authenticate` is on every protected request's path: a clock read, at most one ``stat``
    per ``check_interval`` seconds, a dict lookup by key id, one SHA-256 and a constant-time compare.
    A file that becomes unreadable or invalid while serving leaves the last good keys in place
    (logged once per change of the file).
    """

    def __init__(self, path: str | Path, check_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Read the file now; a missing, unreadable or invalid file raises :class:`KeysError`."""
        self.path = Path(path)
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._signature = self._stat()
        if self._signature is None:
            raise KeysError(f"cannot read API keys file {self.path}: no such file "
                            "(create it with `scoring-server keys create --file ...`)")
        self._table = self._index(read_keys(self.path))
        self._checked = clock()
        if not self._table:
            _logger.warning("API keys file %s holds no keys: every request but /ping and /health is refused",
                            self.path)

    @property
    def keys(self) -> list[ApiKey]:
        return list(self._table.values())

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key entry ``presented`` is, or None."""
        if self._clock() - self._checked >= self.check_interval:
            self.refresh()
        key_id = key_id_of(presented)
        if key_id is None:
            return None
        entry = self._table.get(key_id)
        if entry is None:
            hmac.compare_digest(key_digest(_DUMMY_SALT, presented), _DUMMY_SALT * 2)
            return None
        return entry if hmac.compare_digest(key_digest(entry.salt, presented), entry.digest) else None

    def refresh(self) -> None:
        """Re-read the file if it changed since last read; one thread at a time, the others go on."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._checked = self._clock()
            signature = self._stat()
            if signature == self._signature:
                return
            self._signature = signature  # a bad file is reported once, not at every check
            if signature is None:
                _logger.error("API keys file %s is gone; keeping the %d keys read before", self.path,
                              len(self._table))
                return
            try:
                table = self._index(read_keys(self.path))
            except KeysError as exc:
                _logger.error("%s; keeping the %d keys read before", exc, len(self._table))
                return
            self._table = table
            _logger.info("Re-read API keys file %s: %d keys", self.path, len(table))
        finally:
            self._lock.release()

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns

    @staticmethod
    def _index(keys: list[ApiKey]) -> dict[str, ApiKey]:
        return {key.key_id: key for key in keys}
