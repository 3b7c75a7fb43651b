"""Where a worker keeps the model it serves."""
from __future__ import annotations

from flask import current_app

from .pipeline import Scorer


class ModelSlot:
    """Holds the scorer (model plus per-model request plan) of one app; empty until loaded."""

    def __init__(self, scorer: Scorer | None = None) -> None:
        self.scorer = scorer

    @property
    def ready(self) -> bool:
        return self.scorer is not None


def current_slot() -> ModelSlot:
    """The model slot of the app handling the current request."""
    return current_app.extensions["model_slot"]
