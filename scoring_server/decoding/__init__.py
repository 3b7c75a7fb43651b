"""Request decoding: turn an ``/invocations`` body into model input and params.

One module per body kind: ``json_body`` (bytes to a JSON value), ``json_formats`` (the four
wrapper keys and raw LLM payloads), ``csv_body`` and ``parquet_body``. Decoding builds the
data structure the client described; making it fit the model's signature is the next step
(``scoring_server.schema_enforcement``).
"""
from __future__ import annotations

from flavors.signature import ModelSignature

from .. import content_types
from .csv_body import decode_csv
from .json_body import parse_json
from .json_formats import decode_json_payload
from .parquet_body import decode_parquet
from .request import DecodedRequest

__all__ = ["DecodedRequest", "decode_body"]


def decode_body(body: bytes, media_type: str, signature: ModelSignature | None) -> DecodedRequest:
    """Decode a request body of a negotiated ``media_type`` (see ``content_types.negotiate``)."""
    if media_type == content_types.JSON:
        return decode_json_payload(parse_json(body), signature)
    input_schema = signature.inputs if signature else None
    if media_type == content_types.CSV:
        return DecodedRequest(decode_csv(body, input_schema))
    return DecodedRequest(decode_parquet(body))
