"""The facts the server reports as it works (a scored request, a batch, a model load, the models a
worker serves), and the observers they are reported to."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

_logger = logging.getLogger(__name__)


@dataclass
class ScoringEvent:
    """One ``/invocations`` request as the scoring path saw it.

    ``format`` is the body's format (``dataframe_split``, ``csv``, ``llm``, ...) and ``rows`` its
    row count, both None when the body was refused before they were known. Durations are in
    seconds; a stage that did not run took 0. ``error_code`` is None on success.

    ``inputs`` is the validated input the model was given (a DataFrame, the numeric fast path's
    matrix in the signature's column order, or tensors) and ``predictions`` what it returned,
    both None when the request failed before them. Observers must not change them.
    """

    model: str
    version: str | None
    protocol: str
    format: str | None = None
    rows: int | None = None
    decode_seconds: float = 0.0
    predict_seconds: float = 0.0
    encode_seconds: float = 0.0
    status: int = 200
    error_code: str | None = None
    inputs: Any = field(default=None, repr=False)
    predictions: Any = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        """Time spent in the scoring path (decode, validate, predict, encode)."""
        return self.decode_seconds + self.predict_seconds + self.encode_seconds

    @property
    def outcome(self) -> str:
        """``success``, ``client_error`` or ``server_error``."""
        return outcome_of(self.status)


def outcome_of(status: int) -> str:
    """The outcome of an answer with HTTP ``status``: ``success``, ``client_error`` or ``server_error``."""
    if status < 400:
        return "success"
    return "client_error" if status < 500 else "server_error"


@dataclass(frozen=True)
class BatchEvent:
    """One ``predict`` call of the adaptive batcher: ``requests`` requests merged into ``rows`` rows."""

    model: str
    version: str | None
    rows: int
    requests: int


@dataclass(frozen=True)
class ModelLoadEvent:
    """One attempt to load a model (``error`` None when it loaded), in the process that made it."""

    model: str
    version: str | None
    flavor: str | None
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class ServedModel:
    """A model a worker holds: its identity, flavor, and when it was made (registered, or saved:
    seconds since the epoch, None when unknown)."""

    model: str
    version: str | None
    flavor: str
    created: float | None


@dataclass(frozen=True)
class ServedModelsEvent:
    """The models this process serves now (all of them), reported whenever that set changes and
    when a worker starts."""

    models: tuple[ServedModel, ...]


Event = Union[ScoringEvent, BatchEvent, ModelLoadEvent, ServedModelsEvent]
Observer = Callable[[Event], None]


class Observers:
    """The listeners of one app. An observer that raises is logged and never fails a request."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def add(self, observer: Observer) -> None:
        """Report every event to ``observer`` from now on (it ignores the kinds it does not need)."""
        self._observers.append(observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every observer, in the order they were added."""
        for observer in self._observers:
            try:
                observer(event)
            except Exception:  # an observer's bug must not turn into the client's error
                _logger.exception("Observer %r failed", observer)
