"""What every wire protocol does: negotiate and decode a body, encode the answer, word errors."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..decoding import DecodedRequest, ModelInputs, RequestBody
from ..errors import ScoringError
from .answers import Answer


class WireProtocol(ABC):
    """One generation of the scoring protocol.

    :meth:`decode` checks the Content-Type, turns the body into model input and params and picks
    the request's :class:`Answer`; :meth:`encode` and :meth:`error` then speak that answer.
    ``default_answer`` words errors found before a request is decoded far enough to know it.
    """

    name: str
    default_answer: Answer

    @abstractmethod
    def decode(self, body: RequestBody, inputs: ModelInputs) -> DecodedRequest:
        """The decoded request, its :attr:`~DecodedRequest.answer` set; raises :class:`ScoringError`."""

    def encode(self, predictions: Any, request: DecodedRequest) -> bytes:
        """The response body for ``request``'s predictions."""
        return request.answer.encode(predictions)

    def error(self, error: ScoringError, request: DecodedRequest | None) -> ScoringError:
        """``error`` worded for ``request`` (None: it failed before its answer was known)."""
        answer = request.answer if request is not None and request.answer is not None else self.default_answer
        return answer.error(error)
