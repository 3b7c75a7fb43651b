"""Where a single-model server's worker keeps the model it serves, swapped atomically when a new
version is loaded."""
from __future__ import annotations

from ..pipeline import Scorer


class ModelSlot:
    """Holds the scorer (model plus per-model request plan) of one app; empty until loaded.

    Requests read ``scorer`` once and keep that object to the end, so a swap never changes the
    model under a request in flight; the replaced scorer is closed, so once those requests are
    answered nothing holds the old model.
    """

    def __init__(self, scorer: Scorer | None = None) -> None:
        self.scorer = scorer

    @property
    def ready(self) -> bool:
        """Whether a model is loaded."""
        return self.scorer is not None

    def install(self, scorer: Scorer) -> None:
        """Serve ``scorer`` from the next request on (one reference assignment: atomic)."""
        previous, self.scorer = self.scorer, scorer
        if previous is not None:
            previous.close()
