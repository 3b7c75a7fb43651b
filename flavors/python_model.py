"""What custom model code is written against: our stand-ins for MLflow's ``PythonModel`` API."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flavors.base import takes_params


@dataclass
class PythonModelContext:
    """Handed to ``load_context``: ``artifacts`` maps each artifact name to its absolute local path."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict = field(default_factory=dict)


class PythonModel:
    """Base class of custom models, compatible with ``mlflow.pyfunc.PythonModel``.

    Subclasses implement ``predict(self, context, model_input, params=None)`` (``context`` and
    ``params`` may be omitted) and optionally ``load_context`` to load their artifacts. Modules
    shipped as ``code_paths`` are importable while the model loads (at module top level or in
    ``load_context``), not from ``predict``: see :mod:`flavors.code_paths`.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Load artifacts from ``context.artifacts``; runs once when the model is loaded."""

    def predict(self, context: PythonModelContext, model_input: Any, params: dict | None = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")


class FunctionModel(PythonModel):
    """A plain ``predict(model_input[, params])`` function used as a model."""

    def __init__(self, func: Callable) -> None:
        self.func = func

    def predict(self, context: PythonModelContext, model_input: Any, params: dict | None = None) -> Any:
        if takes_params(self.func):
            return self.func(model_input, params=params)
        return self.func(model_input)


_code_model: Any = None


def set_model(model: Any) -> None:
    """Declare the model of a models-from-code file, like ``mlflow.models.set_model``."""
    global _code_model
    if not (callable(model) or callable(getattr(model, "predict", None))):
        raise TypeError(f"set_model() needs a PythonModel or a predict function, got {type(model).__name__}")
    _code_model = model


def take_model() -> Any:
    """Return and forget the model passed to the last ``set_model`` call (None if there was none)."""
    global _code_model
    model, _code_model = _code_model, None
    return model
