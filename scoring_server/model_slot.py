"""Where a worker keeps the model it serves."""
from __future__ import annotations

from flask import current_app

from flavors import LoadedModel


class ModelSlot:
    """Holds the loaded model of one app; empty until a model is loaded."""

    def __init__(self, model: LoadedModel | None = None) -> None:
        self.model = model

    @property
    def ready(self) -> bool:
        return self.model is not None


def current_slot() -> ModelSlot:
    """The model slot of the app handling the current request."""
    return current_app.extensions["model_slot"]
