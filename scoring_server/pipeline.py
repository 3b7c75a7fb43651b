"""The scoring pipeline shared by the HTTP server and the batch commands:
decode (the wire protocol) → enforce the signature → predict → encode (the wire protocol)."""
from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass
from time import monotonic, perf_counter
from typing import Any

from flavors import LoadedModel

from .batching import AdaptiveBatcher
from .catalog.loading import ModelIdentity
from .decoding import DecodedRequest, ModelInputs, RequestBody
from .errors import ScoringError, invalid_input
from .fast_path import NumericFastPath
from .monitoring import BatchEvent, Observers, ScoringEvent, ServedModel
from .prediction import predict
from .protocols import MLFLOW2, WireProtocol, protocol_named
from .schema import enforce_input_schema, enforce_params_and_method
from .workers.context import deadline_exceeded, request_deadline

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchingPolicy:
    """How a scorer batches concurrent requests (see :class:`AdaptiveBatcher`)."""

    max_batch_size: int
    max_batch_time_ms: float
    wait_timeout: float | None = None
    threads: bool = True  # requests also come from threads (else only from the worker loop's greenlets)


class Scorer:
    """Scores request bodies for one loaded model; per-model decisions are made once, here.

    ``protocol`` is the wire protocol the model is served with, ``identity`` the name and
    version it answers as, ``batching`` whether concurrent requests share ``predict`` calls, and
    ``observers`` who hears about every scored request.
    """

    def __init__(self, model: LoadedModel, protocol: WireProtocol | str = MLFLOW2,
                 identity: ModelIdentity | None = None, batching: BatchingPolicy | None = None,
                 observers: Observers | None = None) -> None:
        self.model = model
        self.identity = identity or ModelIdentity(model.metadata.path.name)
        self.protocol = protocol_named(protocol) if isinstance(protocol, str) else protocol
        self.signature = model.metadata.signature
        self.inputs = ModelInputs(self.signature, NumericFastPath.for_model(model))
        self.batching = batching
        self.observers = observers if observers is not None else Observers()
        self._batcher: AdaptiveBatcher | None = None
        self._batcher_pid = 0
        self._batcher_lock = threading.Lock()
        self._closed = False

    @property
    def fast_path(self) -> NumericFastPath | None:
        """The numeric fast path of this model's input, if it has one (``inputs`` holds it)."""
        return self.inputs.fast_path

    def score(self, body: bytes, content_type: str | None) -> bytes:
        """Score one request body and return the response body; raises :class:`ScoringError`."""
        return self.score_body(RequestBody(body, content_type))

    def score_body(self, body: RequestBody) -> bytes:
        """:meth:`score` for a body whose JSON may already have been parsed."""
        event = ScoringEvent(self.identity.name, self.identity.version, self.protocol.name)
        request = None
        batcher = self._process_batcher()
        try:
            started = perf_counter()
            if batcher is not None:  # a batch being collected is worth holding for a request still decoding
                batcher.arriving()
            try:
                request = self.protocol.decode(body, self.inputs)
                self.validate(request)
            except BaseException as exc:
                if batcher is not None:
                    batcher.abandon()
                if isinstance(exc, ScoringError) or not isinstance(exc, Exception):
                    raise
                raise _unforeseen(exc) from exc
            decoded = perf_counter()
            event.format, event.rows, event.decode_seconds = request.format, request.rows, decoded - started
            deadline = request_deadline()  # set by the worker: past it, the client has its 504 already
            if deadline is not None and monotonic() >= deadline:
                raise deadline_exceeded()
            if batcher is not None:
                raw = batcher.predict(request.data, request.params, deadline)
            else:
                raw = self.predict_now(request.data, request.params)
            predicted = perf_counter()
            event.predict_seconds = predicted - decoded
            event.inputs, event.predictions = request.data, raw
            answer = self.protocol.encode(raw, request)
            event.encode_seconds = perf_counter() - predicted
            return answer
        except ScoringError as error:
            answered = self.protocol.error(error, request)
            event.status, event.error_code = answered.status, answered.error_code
            if request is not None:
                event.format, event.rows = request.format, request.rows
            if answered is error:
                raise
            raise answered from error
        finally:
            if self.observers:
                self.observers.emit(event)

    def validate(self, request: DecodedRequest) -> None:
        """Make ``request``'s input and params fit the model's signature (the fast path's matrix
        is already in the model's columns and types)."""
        if not request.validated:
            data = enforce_input_schema(request.data, self.signature.inputs if self.signature else None)
            request.data = self.fast_path.frame_as_matrix(data) if self.fast_path else data
        request.params = enforce_params_and_method(request.params, self.signature.params if self.signature else None,
                                                   self.model.capabilities.predict_methods)

    def predict_now(self, data: Any, params: dict | None) -> Any:
        """The model's predictions for validated input: the one place a model is called."""
        return predict(self.model, data, params)

    def served_model(self) -> ServedModel:
        """What this scorer serves, as reported to observers."""
        return ServedModel(self.identity.name, self.identity.version, self.model.flavor, self.identity.created)

    def close(self) -> None:
        """The model is no longer served: end this process's batching thread (requests still in
        flight are answered) so that nothing keeps the model in memory."""
        with self._batcher_lock:
            self._closed = True
            if self._batcher is not None:
                self._batcher.close()

    def _process_batcher(self) -> AdaptiveBatcher | None:
        """This process's batcher, made on the first request after a fork (threads do not
        survive a fork, and a batcher made before it would belong to the parent)."""
        if self.batching is None or self._closed:
            return None
        pid = os.getpid()
        if self._batcher_pid != pid:
            with self._batcher_lock:
                if self._batcher_pid != pid and not self._closed:
                    policy = self.batching
                    self._batcher = AdaptiveBatcher(self.predict_now, policy.max_batch_size,
                                                    policy.max_batch_time_ms, policy.wait_timeout,
                                                    on_batch=self._batched, threads=policy.threads)
                    self._batcher_pid = pid
        return self._batcher


    def _batched(self, rows: int, requests: int) -> None:
        if self.observers:
            self.observers.emit(BatchEvent(self.identity.name, self.identity.version, rows, requests))


def _unforeseen(exc: Exception) -> ScoringError:
    """A decoder meeting input nobody foresaw: still the client's 400, never a 500 (logged with
    its traceback)."""
    _logger.exception("Unexpected failure while decoding a request", exc_info=exc)
    error = invalid_input(f"The request could not be processed: {type(exc).__name__}: {exc}")
    error.stack_trace = "".join(traceback.format_exception(exc))
    return error
