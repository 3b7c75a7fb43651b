"""The MLflow 1.x scoring protocol, for clients that still speak it.

MLflow 1.x clients send bare DataFrame JSON (split-oriented by default, records with
``format=pandas-records``), ``application/json-numpy-split`` bodies, and read bare responses
with no ``predictions`` wrapper; every error they see has ``error_code`` BAD_REQUEST. A 1.x
request is translated here into the equivalent 2.x payload, so decoding, the signature rules
and the fast path are shared; only the answer's shape and error codes differ.
"""
from __future__ import annotations

from typing import Any

from .. import content_types
from ..content_types import Negotiated
from ..decoding import DecodedRequest, ModelInputs, RequestBody, decode_json_request, decode_table
from ..decoding.json_formats import DATAFRAME_RECORDS, DATAFRAME_SPLIT, INPUTS, INSTANCES
from ..errors import ScoringError, unsupported_media_type
from .answers import MLFLOW1_ANSWER
from .base import WireProtocol

MLFLOW1 = "mlflow1"
LEGACY_FORMATS = ("pandas-records", "pandas-split")
LEGACY_TYPES = (content_types.CSV, content_types.JSON, content_types.NUMPY_SPLIT)
SPLIT_KEYS = {"columns", "data", "index"}
NUMPY_PARSE_ERROR = (
    "Failed to parse input as a Numpy. Ensure that the input is a valid JSON-formatted Pandas DataFrame with the "
    "split orient produced using the `pandas.DataFrame.to_json(..., orient='split')` method."
)


class Mlflow1Protocol(WireProtocol):
    """What MLflow 1.x servers spoke: ``format=`` parameters, numpy-split bodies, bare answers."""

    name = MLFLOW1
    default_answer = MLFLOW1_ANSWER
    accepted = LEGACY_TYPES

    def negotiate(self, content_type: str | None) -> Negotiated:
        """The body's media type and ``format=``, by MLflow 1.30's rules: media types matched
        exactly (no aliases), a UTF-8 ``charset``, ``format=`` (empty: none) only on
        ``application/json``, any other parameter ignored; a 415 in 1.x words otherwise."""
        media_type, params = content_types.split_content_type(content_type or "")
        content_types.check_charset(params)
        fmt = params.get("format") or None
        if media_type not in self.accepted or (
                fmt is not None and (media_type != content_types.JSON or fmt not in LEGACY_FORMATS)):
            raise self._unsupported(content_type)
        return Negotiated(media_type, fmt)

    def decode(self, body: RequestBody, inputs: ModelInputs) -> DecodedRequest:
        negotiated = self.negotiate(body.content_type)
        if negotiated.media_type == content_types.CSV:
            return legacy(decode_table(body.raw, negotiated.media_type, inputs))
        return decode_legacy_payload(negotiated, body.json(), inputs)

    def _unsupported(self, content_type: str | None) -> ScoringError:
        return unsupported_media_type(
            "This predictor only supports the following content types and formats: "
            f"Types: {list(self.accepted)}; Formats: {list(LEGACY_FORMATS)}. Got '{content_type or ''}'."
        )


def decode_legacy_payload(negotiated: Negotiated, payload: Any, inputs: ModelInputs) -> DecodedRequest:
    """A 1.x JSON body, decoded as the 2.x payload it stands for and answered the 1.x way."""
    return legacy(decode_json_request(translate_payload(negotiated, payload), inputs))


def legacy(request: DecodedRequest) -> DecodedRequest:
    """``request`` answered the 1.x way."""
    request.answer = MLFLOW1_ANSWER
    return request


def translate_payload(negotiated: Negotiated, payload: Any) -> dict:
    """The 2.x payload a 1.x request stands for (params are not part of 1.x)."""
    if negotiated.media_type == content_types.NUMPY_SPLIT:
        # 1.30 builds a DataFrame of it (numpy only in name): index, data and columns all required.
        if not isinstance(payload, dict) or not SPLIT_KEYS <= set(payload):
            raise ScoringError(NUMPY_PARSE_ERROR)
        return {DATAFRAME_SPLIT: {key: payload[key] for key in SPLIT_KEYS}}
    if negotiated.format == "pandas-records" or (negotiated.format is None and isinstance(payload, list)):
        if not isinstance(payload, list):
            raise _parse_error("a JSON list of records (`records` orient)")
        return {DATAFRAME_RECORDS: payload}
    if negotiated.format is None and isinstance(payload, dict) and (INSTANCES in payload or INPUTS in payload):
        return {key: value for key, value in payload.items() if key in (INSTANCES, INPUTS)}
    if isinstance(payload, dict) and "data" in payload and set(payload) <= SPLIT_KEYS:
        return {DATAFRAME_SPLIT: payload}
    raise _parse_error("the `split` orient")


def _parse_error(expected: str) -> ScoringError:
    return ScoringError(
        "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid JSON-formatted Pandas "
        f"DataFrame with {expected} produced using the `pandas.DataFrame.to_json(..., orient='split')` method."
    )
