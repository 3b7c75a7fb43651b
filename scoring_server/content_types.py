"""Content-Type negotiation for ``/invocations``, for every protocol generation.

The rules are MLflow's: the media type is matched case-sensitively, ``charset`` must be UTF-8
(case-insensitive value, no quotes) and any other parameter is refused, each with a 415.
``application/csv`` is accepted as an alias of ``text/csv``, as MLflow's documentation shows.
MLflow 1.x clients are negotiated by their own, looser rules (``protocols/mlflow1.py``).
"""
from __future__ import annotations

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


def negotiate(content_type: str | None) -> Negotiated:
    """The media type (aliases resolved) of this body, or a 415."""
    media_type, params = split_content_type(content_type or "")
    check_charset(params)
    _check_parameters(params)
    media_type = _ALIASES.get(media_type, media_type)
    if media_type not in SUPPORTED:
        raise _unsupported_type(content_type)
    return Negotiated(media_type)


def _unsupported_type(content_type: str | None) -> ScoringError:
    return unsupported_media_type(
        "This predictor only supports the following content types: "
        f"Types: {list(SUPPORTED)}. Got '{content_type or ''}'."
    )


def check_charset(params: dict[str, str]) -> None:
    """Only UTF-8 bodies (415 otherwise), whatever the generation."""
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise unsupported_media_type("The scoring server only supports UTF-8")


def _check_parameters(params: dict[str, str]) -> None:
    """No parameter but ``charset`` (415 otherwise)."""
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
