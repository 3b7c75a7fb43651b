"""Where a single-model server's worker keeps the model it serves, swapped atomically when a new
version is loaded."""
from __future__ import annotations

from ..monitoring import Observers, ServedModelsEvent
from ..pipeline import Scorer


class ModelSlot:
    """Holds the scorer (model plus per-model request plan) of one app; empty until loaded.

    Requests read ``scorer`` once and keep that object to the end, so a swap never changes the
    model under a request in flight; the replaced scorer is closed, so once those requests are
    answered nothing holds the old model.
    """

    def __init__(self, scorer: Scorer | None = None, observers: Observers | None = None) -> None:
        self.scorer = scorer
        self.observers = observers

    @property
    def ready(self) -> bool:
        """Whether a model is loaded."""
        return self.scorer is not None

    def install(self, scorer: Scorer) -> None:
        """Serve ``scorer`` from the next request on (one reference assignment: atomic)."""
        previous, self.scorer = self.scorer, scorer
        if previous is not None:
            previous.close()
        self.report()

    def report(self) -> None:
        """Tell the observers which model this process serves (on a change, and when a worker starts)."""
        if self.observers:
            self.observers.emit(ServedModelsEvent((self.scorer.served_model(),) if self.scorer else ()))
