"""Where the admin API may load models from: ``models:/`` URIs, and model directories inside the
operator's ``allowed_model_roots``.

Loading a model can run its code (pickle formats, models-from-code), so a caller of ``POST
/models`` must not be able to name any directory the server's user can read. A local URI is
admitted when it is an absolute path (or ``file://`` URI) without ``..`` whose real path (every
symlink resolved) lies strictly inside a root and holds an ``MLmodel``; the real path is what is
stored and loaded, and it is checked again before each load. Every refusal of a local URI is the
same 403 with the same message, whether or not the path exists, so that the API cannot be used
to probe the file system.

``models:/`` URIs are admitted as they are: the registry is the operator's (only those who may
write its root can register models), and every worker resolves them in the server's registry.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from ..config import ConfigError
from ..errors import BAD_REQUEST, PERMISSION_DENIED, ScoringError
from ..registry import RegistryError, parse_models_uri

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
REFUSED = ("uri must be a models:/ URI, or the absolute path (or file:// URI) of a model directory inside one "
           "of the server's allowed model roots (--allowed-model-roots)")


class AllowedRoots:
    """The real paths of the directories local admin URIs must lie in; none refuses every local URI."""

    def __init__(self, roots: Iterable[str | os.PathLike] = ()) -> None:
        real = []
        for root in roots:
            path = os.path.realpath(os.path.expanduser(os.fspath(root)))
            if not os.path.isdir(path):
                raise ConfigError(f"allowed_model_roots: no such directory: {root}")
            real.append(path)
        self.roots = tuple(real)

    def admit(self, uri: str) -> str:
        """The URI to store for a model added through the admin API: a ``models:/`` URI as it is,
        a local one as its real path; a :class:`ScoringError` (400/403) otherwise."""
        if not isinstance(uri, str) or not uri or any(ord(c) < 32 or ord(c) == 127 for c in uri):
            raise ScoringError(REFUSED, BAD_REQUEST)
        if uri.startswith("models:"):
            try:
                parse_models_uri(uri)
            except RegistryError as exc:
                raise ScoringError(str(exc), BAD_REQUEST) from None
            return uri
        path = self._local_path(uri)
        real = self.real_model_dir(path)
        if real is None:
            raise ScoringError(REFUSED, PERMISSION_DENIED, 403)
        return real

    def real_model_dir(self, path: str) -> str | None:
        """``path``'s real path if it is a model directory strictly inside a root, else None."""
        if not os.path.isabs(path) or ".." in PurePosixPath(path).parts:
            return None
        try:
            real = os.path.realpath(path)
            inside = any(real != root and os.path.commonpath([real, root]) == root for root in self.roots)
            return real if inside and os.path.isfile(os.path.join(real, "MLmodel")) else None
        except (OSError, ValueError):  # a name too long, a NUL byte: refused like any other
            return None

    @staticmethod
    def _local_path(uri: str) -> str:
        match = _SCHEME.match(uri)
        if match is None:
            return uri
        if match.group(1).lower() != "file":
            raise ScoringError(f"{REFUSED}; other URI schemes are not accepted", BAD_REQUEST)
        parsed = urlsplit(uri)
        if parsed.netloc not in ("", "localhost") or parsed.query or parsed.fragment:
            raise ScoringError(REFUSED, BAD_REQUEST)
        return unquote(parsed.path)
