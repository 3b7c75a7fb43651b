"""The facts about one scored request, and the observers they are reported to."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

_logger = logging.getLogger(__name__)


@dataclass
class ScoringEvent:
    """One ``/invocations`` request as the scoring path saw it.

    ``format`` is the body's format (``dataframe_split``, ``csv``, ``llm``, ...) and ``rows`` its
    row count, both None when the body was refused before they were known. Durations are in
    seconds; a stage that did not run took 0. ``error_code`` is None on success.
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

    @property
    def seconds(self) -> float:
        """Time spent in the scoring path (decode, validate, predict, encode)."""
        return self.decode_seconds + self.predict_seconds + self.encode_seconds

    @property
    def outcome(self) -> str:
        """``success``, ``client_error`` or ``server_error``."""
        if self.status < 400:
            return "success"
        return "client_error" if self.status < 500 else "server_error"


Observer = Callable[[ScoringEvent], None]


class Observers:
    """The listeners of one app. An observer that raises is logged and never fails a request."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def add(self, observer: Observer) -> None:
        """Report every scored request to ``observer`` from now on."""
        self._observers.append(observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def emit(self, event: ScoringEvent) -> None:
        """Hand ``event`` to every observer, in the order they were added."""
        for observer in self._observers:
            try:
                observer(event)
            except Exception:  # an observer's bug must not turn into the client's error
                _logger.exception("Observer %r failed", observer)
