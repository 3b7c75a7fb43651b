"""``auto``: each request answered in its own generation, for servers with both kinds of client.

A ``format=`` parameter, a numpy-split body, or a bare DataFrame body (a list, or an object with
``data``/``columns``) is 1.x; a body with a 2.x wrapper key (or an LLM key) is 2.x; CSV and
parquet are answered the 2.x way.
"""
from __future__ import annotations

from typing import Any

from .. import content_types
from ..content_types import Negotiated
from ..decoding import DecodedRequest, ModelInputs, RequestBody, decode_table
from ..decoding.json_formats import FORMAT_KEYS, LLM_KEYS
from .answers import MLFLOW2_ANSWER
from .mlflow1 import LEGACY_TYPES, SPLIT_KEYS, Mlflow1Protocol, decode_legacy_payload
from .mlflow2 import answered, decode_payload

AUTO = "auto"


class AutoProtocol(Mlflow1Protocol):
    """MLflow 2.x and 1.x clients on one endpoint (parquet too, which only 2.x clients send)."""

    name = AUTO
    default_answer = MLFLOW2_ANSWER
    accepted = (*LEGACY_TYPES, content_types.PARQUET)

    def decode(self, body: RequestBody, inputs: ModelInputs) -> DecodedRequest:
        negotiated = self.negotiate(body.content_type)
        if negotiated.media_type in (content_types.CSV, content_types.PARQUET):
            return answered(decode_table(body.raw, negotiated.media_type, inputs))
        payload = body.json()
        if is_legacy(negotiated, payload):
            return decode_legacy_payload(negotiated, payload, inputs)
        return decode_payload(payload, inputs)


def is_legacy(negotiated: Negotiated, payload: Any) -> bool:
    """Whether a JSON request comes from a 1.x client."""
    if negotiated.format is not None or negotiated.media_type == content_types.NUMPY_SPLIT:
        return True
    if isinstance(payload, list):
        return True
    return isinstance(payload, dict) and not any(key in payload for key in (*FORMAT_KEYS, *LLM_KEYS)) and bool(
        SPLIT_KEYS & set(payload)
    )
