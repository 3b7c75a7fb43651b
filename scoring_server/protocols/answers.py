"""How a request is answered: the shape of its predictions and the error codes it is told.

The protocol decides the answer while decoding, so encoding and error wording never ask which
protocol (or which kind of payload) a request came in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..encoding import encode_predictions
from ..errors import BAD_REQUEST, ScoringError


@dataclass(frozen=True)
class Answer:
    """``wrapped``: predictions go under ``{"predictions": ...}``; ``one_error_code``: every error
    carries this ``error_code`` (MLflow 1.x clients know only BAD_REQUEST)."""

    protocol: str
    wrapped: bool = True
    one_error_code: str | None = None

    def encode(self, predictions: Any) -> bytes:
        """The response body for ``predictions``."""
        return encode_predictions(predictions, wrap=self.wrapped)

    def error(self, error: ScoringError) -> ScoringError:
        """``error`` as this answer words it."""
        return error.answered_as(self.one_error_code) if self.one_error_code else error


MLFLOW2_ANSWER = Answer("mlflow2")
LLM_ANSWER = Answer("mlflow2", wrapped=False)  # raw LLM-style payloads get the model's output as is
MLFLOW1_ANSWER = Answer("mlflow1", wrapped=False, one_error_code=BAD_REQUEST)
