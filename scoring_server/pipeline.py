"""The scoring pipeline shared by the HTTP server and the batch ``predict`` command:
negotiate → decode → enforce the signature → predict → encode."""
from __future__ import annotations

import logging
import traceback

from flavors import LoadedModel

from .content_types import negotiate
from .decoding import DecodedRequest, decode_body
from .encoding import encode_predictions
from .errors import ScoringError, invalid_input
from .prediction import predict
from .schema import enforce_input_schema, enforce_params

_logger = logging.getLogger(__name__)


def score(model: LoadedModel, body: bytes, content_type: str | None) -> bytes:
    """Score one request body and return the JSON response body; raises :class:`ScoringError`."""
    request = _prepare(model, body, content_type)
    raw = predict(model, request.data, request.params)
    return encode_predictions(raw, wrap=not request.unwrapped)


def _prepare(model: LoadedModel, body: bytes, content_type: str | None) -> DecodedRequest:
    """Decode and validate; an unforeseen failure on odd input is still the client's 400, never a 500."""
    signature = model.metadata.signature
    try:
        request = decode_body(body, negotiate(content_type), signature)
        request.data = enforce_input_schema(request.data, signature.inputs if signature else None)
        request.params = enforce_params(request.params, signature.params if signature else None)
        return request
    except ScoringError:
        raise
    except Exception as exc:  # a decoder meeting input nobody foresaw
        _logger.exception("Unexpected failure while decoding a request")
        error = invalid_input(f"The request could not be processed: {type(exc).__name__}: {exc}")
        error.stack_trace = traceback.format_exc()
        raise error from exc
