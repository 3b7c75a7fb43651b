"""The scoring pipeline shared by the HTTP server and the batch commands:
negotiate → decode → enforce the signature → predict → encode."""
from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from flavors import LoadedModel

from . import content_types, protocols
from .decoding import DecodedRequest, decode_body
from .decoding.json_body import parse_json
from .decoding.json_formats import PARAMS_KEY, decode_json_payload
from .encoding import encode_predictions
from .errors import BAD_REQUEST, ScoringError, invalid_input
from .batching import AdaptiveBatcher
from .fast_path import NumericFastPath
from .model_source import ModelIdentity
from .prediction import predict

from .schema import enforce_input_schema, enforce_params

_logger = logging.getLogger(__name__)


class Scorer:
    """Scores request bodies for one loaded model; per-model decisions are made once, here.

    ``protocol`` is the wire-protocol generation the model is served with (``protocols``);
    ``identity`` the name and version it answers as.
    """

    def __init__(self, model: LoadedModel, batcher: AdaptiveBatcher | None = None,
                 protocol: str = protocols.MLFLOW2, identity: ModelIdentity | None = None) -> None:
        self.model = model
        self.identity = identity or ModelIdentity(model.metadata.path.name)
        self.signature = model.metadata.signature
        self.fast_path = NumericFastPath.for_model(model)
        self.batcher = batcher
        self.protocol = protocol

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
        return encode_predictions(raw, wrap=request.wrapped)

    def prepare(self, body: bytes, content_type: str | None) -> DecodedRequest:
        """Decode and validate; an unforeseen failure on odd input is still the client's 400, never a 500."""
        try:
            return self._prepare(body, content_type)
        except ScoringError:
            raise
        except Exception as exc:  # a decoder meeting input nobody foresaw
            _logger.exception("Unexpected failure while decoding a request")
            error = invalid_input(f"The request could not be processed: {type(exc).__name__}: {exc}")
            error.stack_trace = traceback.format_exc()
            raise error from exc

    def _prepare(self, body: bytes, content_type: str | None) -> DecodedRequest:
        negotiated = protocols.negotiate(content_type, self.protocol)
        if negotiated.media_type not in (content_types.JSON, protocols.NUMPY_SPLIT):
            decode = lambda: self._validated(decode_body(body, negotiated.media_type, self.signature))  # noqa: E731
            return self._as_legacy(decode) if self.protocol == protocols.MLFLOW1 else decode()
        payload = parse_json(body)
        if protocols.is_legacy_request(negotiated, payload, self.protocol):
            return self._as_legacy(lambda: self._from_payload(protocols.translate_legacy_payload(negotiated, payload)))
        return self._from_payload(payload)

    def _from_payload(self, payload: Any) -> DecodedRequest:
        matrix = self.fast_path.matrix(payload) if self.fast_path else None
        if matrix is not None:
            return DecodedRequest(matrix, self._params(payload.get(PARAMS_KEY)))
        return self._validated(decode_json_payload(payload, self.signature))

    def _validated(self, request: DecodedRequest) -> DecodedRequest:
        data = enforce_input_schema(request.data, self.signature.inputs if self.signature else None)
        request.data = self.fast_path.frame_as_matrix(data) if self.fast_path else data
        request.params = self._params(request.params)
        return request

    def _params(self, params: Any) -> dict | None:
        return enforce_params(params, self.signature.params if self.signature else None)

    @staticmethod
    def _as_legacy(prepare: Callable[[], DecodedRequest]) -> DecodedRequest:
        """Prepare a 1.x request: bare answer, and every error a BAD_REQUEST as 1.x clients know."""
        try:
            request = prepare()
        except ScoringError as error:
            error.error_code = BAD_REQUEST
            raise
        request.legacy = True
        return request
