"""The MLflow 2.x/3.x scoring protocol: JSON with a format key (or a raw LLM payload), CSV, parquet."""
from __future__ import annotations

from typing import Any

from .. import content_types
from ..decoding import DecodedRequest, ModelInputs, RequestBody, decode_json_request, decode_table
from ..decoding.request import LLM_FORMAT
from .answers import LLM_ANSWER, MLFLOW2_ANSWER
from .base import WireProtocol

MLFLOW2 = "mlflow2"


class Mlflow2Protocol(WireProtocol):
    """What ``mlflow models serve`` speaks since MLflow 2.0."""

    name = MLFLOW2
    default_answer = MLFLOW2_ANSWER

    def decode(self, body: RequestBody, inputs: ModelInputs) -> DecodedRequest:
        media_type = content_types.negotiate(body.content_type).media_type
        if media_type == content_types.JSON:
            return decode_payload(body.json(), inputs)
        return answered(decode_table(body.raw, media_type, inputs))


def decode_payload(payload: Any, inputs: ModelInputs) -> DecodedRequest:
    """A 2.x JSON payload, answered wrapped (or as is, for a raw LLM payload)."""
    request = decode_json_request(payload, inputs)
    request.answer = LLM_ANSWER if request.format == LLM_FORMAT else MLFLOW2_ANSWER
    return request


def answered(request: DecodedRequest) -> DecodedRequest:
    """``request`` answered the 2.x way."""
    request.answer = MLFLOW2_ANSWER
    return request
