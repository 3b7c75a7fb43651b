"""Content-Type negotiation for ``/invocations``, for every protocol generation.

The rules are MLflow's: the media type is matched case-sensitively, ``charset`` must be UTF-8
(case-insensitive value, no quotes) and any other parameter is refused, each with a 415.
``application/csv`` is accepted as an alias of ``text/csv``, as MLflow's documentation shows.
MLflow 1.x clients may add a ``format=`` parameter; a protocol that accepts it says which values.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import ScoringError, unsupported_media_type

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
NUMPY_SPLIT = "application/json-numpy-split"
SUPPORTED = (CSV, JSON, PARQUET)
_ALIASES = {"application/csv": CSV}

PROTOCOL_CHANGE_INFO = (
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are seeing this "
    "error, you are likely using an outdated scoring request format. See docs/protocol.md for the request formats."
)


@dataclass(frozen=True)
class Negotiated:
    """The body's canonical media type and, for 1.x clients, its ``format=`` parameter."""

    media_type: str
    format: str | None = None


def negotiate(content_type: str | None, accepted: tuple[str, ...] = SUPPORTED,
              unsupported: Callable[[str | None], ScoringError] | None = None,
              formats: tuple[str, ...] = ()) -> Negotiated:
    """The media type (aliases resolved) of this body, or a 415.

    ``formats`` are the ``format=`` values allowed (none: the parameter is refused like any
    other); ``unsupported`` words the 415 for a type or format outside ``accepted``/``formats``.
    """
    unsupported = unsupported or _unsupported_type
    media_type, params = split_content_type(content_type or "")
    fmt = params.pop("format", None) if formats else None
    if fmt is not None and fmt not in formats:
        raise unsupported(content_type)
    _check_parameters(params)
    media_type = _ALIASES.get(media_type, media_type)
    if media_type not in accepted:
        raise unsupported(content_type)
    return Negotiated(media_type, fmt)


def _unsupported_type(content_type: str | None) -> ScoringError:
    return unsupported_media_type(
        "This predictor only supports the following content types: "
        f"Types: {list(SUPPORTED)}. Got '{content_type or ''}'."
    )


def _check_parameters(params: dict[str, str]) -> None:
    """Only a UTF-8 ``charset`` is allowed (415 otherwise)."""
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise unsupported_media_type("The scoring server only supports UTF-8")
    unexpected = sorted(set(params) - {"charset"})
    if unexpected:
        raise unsupported_media_type(
            f"Unrecognized content type parameters: {', '.join(unexpected)}. {PROTOCOL_CHANGE_INFO}"
        )


def split_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``"a/b; k=v"`` to ``("a/b", {"k": "v"})``, without lower-casing (matching is case-sensitive)."""
    parts = [part.strip() for part in content_type.split(";")]
    params = {key: value for key, _, value in (p.partition("=") for p in parts[1:])}
    return parts[0], params
