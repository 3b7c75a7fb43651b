"""Where a worker keeps the model it serves, swapped atomically when a new version is loaded."""
from __future__ import annotations

from .pipeline import Scorer


class ModelSlot:
    """Holds the scorer (model plus per-model request plan) of one app; empty until loaded.

    Requests read ``scorer`` once and keep that object to the end, so a swap never changes the
    model under a request in flight.
    """

    def __init__(self, scorer: Scorer | None = None) -> None:
        self.scorer = scorer

    @property
    def ready(self) -> bool:
        return self.scorer is not None

    def install(self, scorer: Scorer) -> None:
        """Serve ``scorer`` from the next request on (one reference assignment: atomic)."""
        self.scorer = scorer

