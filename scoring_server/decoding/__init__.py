"""Request decoding: turn an ``/invocations`` body into model input and params.

One module per body kind: ``json_body`` (bytes to a JSON value), ``json_formats`` (the four
wrapper keys and raw LLM payloads), ``csv_body`` and ``parquet_body``; ``limits`` bounds what a
request may decode into (rows, cells, depth, decoded bytes), checked by each of them before it
builds anything. Decoding builds the data structure the client described; making it fit the
model's signature is the next step (``scoring_server.schema``). The wire protocols
(``scoring_server.protocols``) choose which decoder a request goes to.
"""
from __future__ import annotations

from typing import Any

from .. import content_types
from .csv_body import decode_csv
from .json_formats import PARAMS_KEY, check_input_size, decode_json_payload
from .limits import active_limits
from .parquet_body import decode_parquet
from .request import DecodedRequest, ModelInputs, RequestBody

__all__ = ["DecodedRequest", "ModelInputs", "RequestBody", "decode_json_request", "decode_table"]


def decode_json_request(payload: Any, inputs: ModelInputs) -> DecodedRequest:
    """A parsed MLflow 2.x JSON payload: numeric rows straight to a float matrix when the model
    allows it (already in the model's columns and types), otherwise the general decoders; first
    of all, refused if it is larger than the active limits allow."""
    limits = active_limits()
    if limits.bounds_size:
        check_input_size(payload, limits, inputs.signature.inputs if inputs.signature else None)
    matrix = inputs.fast_path.matrix(payload) if inputs.fast_path else None
    if matrix is not None:
        key = next(key for key in payload if key != PARAMS_KEY)
        return DecodedRequest(matrix, payload.get(PARAMS_KEY), key, validated=True)
    return decode_json_payload(payload, inputs.signature)


def decode_table(body: bytes, media_type: str, inputs: ModelInputs) -> DecodedRequest:
    """A CSV or parquet body as a DataFrame (numeric CSV rows as a matrix, when the model allows it)."""
    if media_type == content_types.CSV:
        matrix = inputs.fast_path.csv_matrix(body, active_limits()) if inputs.fast_path else None
        if matrix is not None:
            return DecodedRequest(matrix, format="csv", validated=True)
        input_schema = inputs.signature.inputs if inputs.signature else None
        return DecodedRequest(decode_csv(body, input_schema), format="csv")
    return DecodedRequest(decode_parquet(body), format="parquet")
