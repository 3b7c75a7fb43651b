"""Turn a model URI into a local model directory."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flavors.errors import ModelLoadError

# A scheme has at least two characters, so Windows drive letters ("C:\\models") stay paths.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def _file_uri(uri: str) -> Path:
    parsed = urlsplit(uri)
    if parsed.query or parsed.fragment:
        raise ModelLoadError(f"file URI {uri!r} has a query or fragment; percent-encode '?' and '#'")
    if parsed.netloc not in ("", "localhost"):
        raise ModelLoadError(
            f"file URI {uri!r} names host {parsed.netloc!r}; "
            "use file:///absolute/path or file:relative/path"
        )
    if not parsed.path:
        raise ModelLoadError(f"file URI {uri!r} has no path")
    return _local_path(unquote(parsed.path))


def _local_path(path: str) -> Path:
    return Path(path).expanduser().resolve()


# Scheme -> resolver returning a local model directory. Add "models" here for a model registry.
RESOLVERS: dict[str, Callable[[str], Path]] = {"file": _file_uri}


def resolve_model_uri(uri: str) -> Path:
    """A local path (relative, absolute or ``~``) or ``file:`` URI as an absolute local path."""
    match = _SCHEME.match(uri)
    if match is None:
        return _local_path(uri)
    scheme = match.group(1).lower()
    resolver = RESOLVERS.get(scheme)
    if resolver is None:
        raise ModelLoadError(
            f"model URI scheme {scheme + ':'!r} is not supported (yet): {uri!r}; "
            f"use a local path or one of: {', '.join(s + ':' for s in RESOLVERS)}"
        )
    return resolver(uri)
