"""The flavor interface: how a model type is loaded, and the loaded model the server calls."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from flavors.mlmodel import ModelMetadata


@dataclass(frozen=True)
class ArrayInput:
    """A predictor's promise: a 2-D float64 array gives the same predictions as a DataFrame
    with these columns. ``column_names`` None means any names, taken by position."""

    n_columns: int
    column_names: tuple[str, ...] | None = None

    def matches(self, columns: Sequence[str]) -> bool:
        """Whether a DataFrame with ``columns`` (in this order) may be replaced by its values."""
        return len(columns) == self.n_columns and (self.column_names is None or tuple(columns) == self.column_names)


class Predictor(Protocol):
    """A loaded model. May set ``row_independent``, ``accepts_params`` and ``array_input`` attributes."""

    def predict(self, data: Any, params: dict | None = None) -> Any: ...


@runtime_checkable
class Flavor(Protocol):
    """Loads the models whose ``python_function`` ``loader_module`` is one of ``loader_modules``."""

    name: str
    loader_modules: tuple[str, ...]

    def load(self, metadata: ModelMetadata) -> Predictor: ...


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict.

    ``row_independent``: each output row depends only on its input row, so a batch may be split.
    ``accepts_params``: the model's predict takes inference ``params``; otherwise they are dropped.
    ``array_input``: when set, the model may be given a float matrix instead of a DataFrame.
    """

    metadata: ModelMetadata
    predictor: Predictor
    flavor: str
    row_independent: bool = False
    accepts_params: bool = False
    array_input: ArrayInput | None = None

    @classmethod
    def from_predictor(cls, metadata: ModelMetadata, predictor: Predictor, flavor: str) -> LoadedModel:
        """Wrap ``predictor``, reading its ``row_independent``/``accepts_params`` attributes if set."""
        accepts = getattr(predictor, "accepts_params", None)
        return cls(
            metadata=metadata,
            predictor=predictor,
            flavor=flavor,
            row_independent=bool(getattr(predictor, "row_independent", False)),
            accepts_params=takes_params(predictor.predict) if accepts is None else bool(accepts),
            array_input=getattr(predictor, "array_input", None),
        )

    def predict(self, data: Any, params: dict | None = None) -> Any:
        if self.accepts_params:
            return self.predictor.predict(data, params=params)
        return self.predictor.predict(data)


def takes_params(func: Callable) -> bool:
    """Whether ``func`` can be called with a ``params=`` keyword argument."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "params" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
