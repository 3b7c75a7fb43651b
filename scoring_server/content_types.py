"""Content-Type negotiation for ``/invocations``.

The rules are MLflow's: the media type is matched case-sensitively, ``charset`` must be UTF-8
(case-insensitive value, no quotes) and any other parameter is refused, each with a 415.
``application/csv`` is accepted as an alias of ``text/csv``, as MLflow's documentation shows.
"""
from __future__ import annotations

from .errors import unsupported_media_type

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
SUPPORTED = (CSV, JSON, PARQUET)
_ALIASES = {"application/csv": CSV}

PROTOCOL_CHANGE_INFO = (
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are seeing this "
    "error, you are likely using an outdated scoring request format. See docs/protocol.md for the request formats."
)


def negotiate(content_type: str | None) -> str:
    """Return the canonical media type this request's body is in, or raise a 415."""
    media_type, params = split_content_type(content_type or "")
    check_parameters(params)
    canonical = canonical_media_type(media_type)
    if canonical is None:
        raise unsupported_media_type(
            "This predictor only supports the following content types: "
            f"Types: {list(SUPPORTED)}. Got '{content_type or ''}'."
        )
    return canonical


def check_parameters(params: dict[str, str]) -> None:
    """Only a UTF-8 ``charset`` is allowed (415 otherwise)."""
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise unsupported_media_type("The scoring server only supports UTF-8")
    unexpected = sorted(set(params) - {"charset"})
    if unexpected:
        raise unsupported_media_type(
            f"Unrecognized content type parameters: {', '.join(unexpected)}. {PROTOCOL_CHANGE_INFO}"
        )


def canonical_media_type(media_type: str) -> str | None:
    """The supported media type ``media_type`` names (aliases resolved), or None."""
    media_type = _ALIASES.get(media_type, media_type)
    return media_type if media_type in SUPPORTED else None


def split_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``"a/b; k=v"`` to ``("a/b", {"k": "v"})``, without lower-casing (matching is case-sensitive)."""
    parts = [part.strip() for part in content_type.split(";")]
    params = {key: value for key, _, value in (p.partition("=") for p in parts[1:])}
    return parts[0], params
