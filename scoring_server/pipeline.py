"""The scoring pipeline shared by the HTTP server and the batch commands:
negotiate → decode → enforce the signature → predict → encode."""
from __future__ import annotations

import logging
import traceback
from typing import Any

from flavors import LoadedModel

from . import content_types
from .content_types import negotiate
from .decoding import DecodedRequest, decode_body
from .decoding.json_body import parse_json
from .decoding.json_formats import PARAMS_KEY, decode_json_payload
from .encoding import encode_predictions
from .errors import ScoringError, invalid_input
from .batching import AdaptiveBatcher
from .fast_path import NumericFastPath
from .prediction import predict

from .schema import enforce_input_schema, enforce_params

_logger = logging.getLogger(__name__)


class Scorer:
    """Scores request bodies for one loaded model; per-model decisions are made once, here."""

    def __init__(self, model: LoadedModel, batcher: AdaptiveBatcher | None = None) -> None:
        self.model = model
        self.signature = model.metadata.signature
        self.fast_path = NumericFastPath.for_model(model)
        self.batcher = batcher

    def score(self, body: bytes, content_type: str | None) -> bytes:
        """Score one request body and return the JSON response body; raises :class:`ScoringError`."""
        if self.batcher is None:
            request = self.prepare(body, content_type)
            raw = predict(self.model, request.data, request.params)
        else:
            self.batcher.arriving()
            try:
                request = self.prepare(body, content_type)
            except BaseException:
                self.batcher.abandon()
                raise
            raw = self.batcher.predict(request.data, request.params)
        return encode_predictions(raw, wrap=not request.unwrapped)

    def prepare(self, body: bytes, content_type: str | None) -> DecodedRequest:
        """Decode and validate; an unforeseen failure on odd input is still the client's 400, never a 500."""
        try:
            return self._prepare(body, negotiate(content_type))
        except ScoringError:
            raise
        except Exception as exc:  # a decoder meeting input nobody foresaw
            _logger.exception("Unexpected failure while decoding a request")
            error = invalid_input(f"The request could not be processed: {type(exc).__name__}: {exc}")
            error.stack_trace = traceback.format_exc()
            raise error from exc

    def _prepare(self, body: bytes, media_type: str) -> DecodedRequest:
        signature = self.signature
        if media_type == content_types.JSON:
            payload = parse_json(body)
            matrix = self.fast_path.matrix(payload) if self.fast_path else None
            if matrix is not None:
                return DecodedRequest(matrix, self._params(payload.get(PARAMS_KEY)))
            request = decode_json_payload(payload, signature)
        else:
            request = decode_body(body, media_type, signature)
        data = enforce_input_schema(request.data, signature.inputs if signature else None)
        request.data = self.fast_path.frame_as_matrix(data) if self.fast_path else data
        request.params = self._params(request.params)
        return request

    def _params(self, params: Any) -> dict | None:
        return enforce_params(params, self.signature.params if self.signature else None)
