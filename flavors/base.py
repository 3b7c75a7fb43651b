"""The flavor interface: how a model type is loaded, and the loaded model the server calls."""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from flavors.errors import FlavorPluginError, ModelLoadError
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


@dataclass(frozen=True)
class Capabilities:
    """What the server may do with a predictor beyond calling ``predict(data)``.

    ``row_independent``: each output row depends only on its input row, so requests may be
    batched together and a batch split again. ``accepts_params``: ``predict`` takes inference
    ``params``; otherwise they are dropped. ``array_input``: when set, the predictor may be given
    a float matrix instead of a DataFrame with those columns. ``predict_methods``: the methods a
    request may ask for instead of the saved one (``params: {"predict_method": "predict_proba"}``),
    answered by ``predictor.predict_with(method, data)`` (a :class:`MethodPredictor`).

    Every field defaults to the safe answer, so a capability the predictor does not declare is
    never assumed.
    """

    row_independent: bool = False
    accepts_params: bool = False
    array_input: ArrayInput | None = None
    predict_methods: tuple[str, ...] = ()

    @classmethod
    def undeclared(cls, predictor: Predictor) -> Capabilities:
        """For a predictor that declares none (e.g. an older plug-in): only what its signature shows."""
        return cls(accepts_params=takes_params(predictor.predict))


class Predictor(Protocol):
    """A loaded model.

    It should declare a ``capabilities`` attribute or property (:class:`Capabilities`); without
    one it gets :meth:`Capabilities.undeclared`: not row-independent, params only if ``predict``
    takes them, no array input.
    """

    def predict(self, data: Any, params: dict | None = None) -> Any: ...


class MethodPredictor(Predictor, Protocol):
    """A predictor whose ``capabilities.predict_methods`` name other methods a request may choose."""

    def predict_with(self, method: str, data: Any) -> Any: ...


@runtime_checkable
class Flavor(Protocol):
    """Loads the models whose ``python_function`` ``loader_module`` is one of ``loader_modules``.

    A flavor may also define ``shared_modules(metadata) -> tuple[str, ...]``: the modules loading
    that model imports, which a server of many models imports once before its workers fork; and
    ``model_format(metadata) -> str`` (one of :data:`flavors.policy.FORMATS`) with a ``load`` that
    takes ``policy=`` (:class:`flavors.policy.LoadingPolicy`). A flavor with neither loads only
    under a policy that allows every format (see :func:`flavors.flavor_registry.load_with_policy`).
    """

    name: str
    loader_modules: tuple[str, ...]

    def load(self, metadata: ModelMetadata) -> Predictor: ...


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, with the :class:`Capabilities` its predictor declared.

    ``row_independent``, ``accepts_params`` and ``array_input`` read the same capabilities.
    """

    metadata: ModelMetadata
    predictor: Predictor
    flavor: str
    capabilities: Capabilities
    #: The format the model was read from (``skops``, ``pickle``, ``cloudpickle``, ``code``; see
    #: :mod:`flavors.policy`), None when its flavor does not say.
    model_format: str | None = None

    @classmethod
    def from_predictor(cls, metadata: ModelMetadata, predictor: Predictor, flavor: str,
                       model_format: str | None = None) -> LoadedModel:
        """Wrap ``predictor`` with its declared ``capabilities``, or :meth:`Capabilities.undeclared`."""
        capabilities = getattr(predictor, "capabilities", None)
        if capabilities is None:
            capabilities = Capabilities.undeclared(predictor)
        elif not isinstance(capabilities, Capabilities):
            raise FlavorPluginError(
                f"flavor {flavor!r}: {type(predictor).__name__}.capabilities must be a flavors.base.Capabilities, "
                f"got {type(capabilities).__name__}"
            )
        return cls(metadata=metadata, predictor=predictor, flavor=flavor, capabilities=capabilities,
                   model_format=model_format)

    @property
    def row_independent(self) -> bool:
        return self.capabilities.row_independent

    @property
    def accepts_params(self) -> bool:
        return self.capabilities.accepts_params

    @property
    def array_input(self) -> ArrayInput | None:
        return self.capabilities.array_input

    def predict(self, data: Any, params: dict | None = None) -> Any:
        """The saved method's predictions, or those of the :data:`PREDICT_METHOD` in ``params``
        when the predictor offers a choice (the server has checked it is one of them)."""
        if params and self.capabilities.predict_methods and PREDICT_METHOD in params:
            return self.predictor.predict_with(params[PREDICT_METHOD], data)
        if self.capabilities.accepts_params:
            return self.predictor.predict(data, params=params)
        return self.predictor.predict(data)


#: The inference parameter by which a request chooses among a model's ``predict_methods``.
PREDICT_METHOD = "predict_method"


def import_framework(module: str, extra: str, what: object) -> ModuleType:
    """``import module`` for a flavor's loader; a missing framework is a load error naming the extra
    that installs it, and ``what`` (the model file) it was needed for."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(f"{what} needs {module.split('.')[0]}, which is not installed: "
                             f"pip install 'scoring-server[{extra}]' ({exc})") from None


def takes_params(func: Callable) -> bool:
    """Whether ``func`` can be called with a ``params=`` keyword argument."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "params" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
