"""Wire-protocol generations: MLflow 2.x (the default), MLflow 1.x, and ``auto`` for both.

MLflow 1.x clients send bare DataFrame JSON (split-oriented by default, records with
``format=pandas-records``), ``application/json-numpy-split`` bodies, and read bare responses
with no ``predictions`` wrapper; every error they see has ``error_code`` BAD_REQUEST. A 1.x
request is translated here into the equivalent 2.x payload, so decoding, the signature rules
and the fast path are shared; only the answer's shape and error codes differ.

``auto`` answers each request in its own generation: a ``format=`` parameter, a numpy-split
body, or a bare DataFrame body (a list, or an object with ``data``/``columns``) is 1.x; a body
with a 2.x wrapper key (or an LLM key) is 2.x; CSV and parquet are answered the 2.x way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import content_types
from .decoding.json_formats import DATAFRAME_RECORDS, DATAFRAME_SPLIT, FORMAT_KEYS, INPUTS, INSTANCES, LLM_KEYS
from .errors import ScoringError, unsupported_media_type

MLFLOW2 = "mlflow2"
MLFLOW1 = "mlflow1"
AUTO = "auto"
PROTOCOLS = (MLFLOW2, MLFLOW1, AUTO)

NUMPY_SPLIT = "application/json-numpy-split"
LEGACY_FORMATS = ("pandas-records", "pandas-split")
_LEGACY_TYPES = [content_types.CSV, content_types.JSON, NUMPY_SPLIT]

_SPLIT_KEYS = {"columns", "data", "index"}


@dataclass(frozen=True)
class Negotiated:
    """The body's media type and, for 1.x clients, its ``format=`` parameter."""

    media_type: str
    format: str | None = None

    @property
    def legacy_only(self) -> bool:
        """Only a 1.x client sends this (a ``format=`` parameter or a numpy-split body)."""
        return self.format is not None or self.media_type == NUMPY_SPLIT


def negotiate(content_type: str | None, protocol: str) -> Negotiated:
    """Check the Content-Type against what ``protocol`` accepts; 415 otherwise."""
    if protocol == MLFLOW2:
        return Negotiated(content_types.negotiate(content_type))
    media_type, params = content_types.split_content_type(content_type or "")
    fmt = params.pop("format", None)
    if fmt is not None and fmt not in LEGACY_FORMATS:
        raise _legacy_unsupported(content_type, protocol)
    content_types.check_parameters(params)
    if media_type == NUMPY_SPLIT:
        return Negotiated(NUMPY_SPLIT, fmt)
    canonical = content_types.canonical_media_type(media_type)
    if canonical is None or (protocol == MLFLOW1 and canonical == content_types.PARQUET):
        raise _legacy_unsupported(content_type, protocol)
    return Negotiated(canonical, fmt)


def is_legacy_request(negotiated: Negotiated, payload: Any, protocol: str) -> bool:
    """Whether a JSON request is answered the 1.x way under ``protocol``."""
    if protocol != AUTO:
        return protocol == MLFLOW1
    if negotiated.legacy_only or isinstance(payload, list):
        return True
    return isinstance(payload, dict) and not any(key in payload for key in (*FORMAT_KEYS, *LLM_KEYS)) and bool(
        _SPLIT_KEYS & set(payload)
    )


def translate_legacy_payload(negotiated: Negotiated, payload: Any) -> dict:
    """The 2.x payload a 1.x request stands for (params are not part of 1.x)."""
    if negotiated.media_type == NUMPY_SPLIT:
        if not isinstance(payload, dict) or "index" not in payload or "data" not in payload:
            raise _legacy_parse_error("a numpy split-oriented body with 'index' and 'data' keys")
        return {INPUTS: payload["data"]}
    if negotiated.format == "pandas-records" or (negotiated.format is None and isinstance(payload, list)):
        if not isinstance(payload, list):
            raise _legacy_parse_error("a JSON list of records (`records` orient)")
        return {DATAFRAME_RECORDS: payload}
    if negotiated.format is None and isinstance(payload, dict) and (INSTANCES in payload or INPUTS in payload):
        return {key: value for key, value in payload.items() if key in (INSTANCES, INPUTS)}
    if isinstance(payload, dict) and "data" in payload and set(payload) <= _SPLIT_KEYS:
        return {DATAFRAME_SPLIT: payload}
    raise _legacy_parse_error("the `split` orient")


def _legacy_parse_error(expected: str) -> ScoringError:
    return ScoringError(
        "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid JSON-formatted Pandas "
        f"DataFrame with {expected} produced using the `pandas.DataFrame.to_json(..., orient='split')` method."
    )


def _legacy_unsupported(content_type: str | None, protocol: str) -> ScoringError:
    types = _LEGACY_TYPES + ([content_types.PARQUET] if protocol == AUTO else [])
    return unsupported_media_type(
        "This predictor only supports the following content types and formats: "
        f"Types: {types}; Formats: {list(LEGACY_FORMATS)}. Got '{content_type or ''}'."
    )
