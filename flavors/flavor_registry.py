"""Which flavor loads a model: built-in flavors plus plug-ins from the ``scoring_server.flavors`` entry points."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from importlib.metadata import entry_points

from flavors.base import Flavor, Predictor
from flavors.errors import FlavorPluginError, ModelLoadError
from flavors.keras import KerasFlavor
from flavors.lightgbm import LightGBMFlavor
from flavors.mlmodel import ModelMetadata
from flavors.onnx import OnnxFlavor
from flavors.policy import FORMATS_FLAG, LoadingPolicy
from flavors.python_function import PythonModelFlavor
from flavors.pytorch import PyTorchFlavor
from flavors.sklearn import SklearnFlavor
from flavors.xgboost import XGBoostFlavor

ENTRY_POINT_GROUP = "scoring_server.flavors"


class FlavorRegistry:
    """Flavors by name and by the ``python_function`` ``loader_module`` values they load.

    Registering a flavor replaces any earlier one with the same name or loader module, so a
    plug-in can override a built-in flavor.
    """

    def __init__(self, flavors: Iterable[Flavor] = ()) -> None:
        self._by_name: dict[str, Flavor] = {}
        self._by_loader_module: dict[str, Flavor] = {}
        for flavor in flavors:
            self.register(flavor)

    def register(self, flavor: Flavor) -> None:
        self._by_name[flavor.name] = flavor
        for loader_module in flavor.loader_modules:
            self._by_loader_module[loader_module] = flavor

    def get(self, name: str) -> Flavor | None:
        """The flavor called ``name`` (e.g. ``sklearn``), if registered."""
        return self._by_name.get(name)

    def for_loader_module(self, loader_module: str) -> Flavor | None:
        """The flavor that loads models with this ``loader_module`` (e.g. ``mlflow.sklearn``)."""
        return self._by_loader_module.get(loader_module)

    @property
    def loader_modules(self) -> list[str]:
        return sorted(self._by_loader_module)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register each entry point of ``group``: a Flavor instance or a class taking no arguments."""
        for entry_point in entry_points(group=group):
            try:
                loaded = entry_point.load()
                flavor = loaded() if isinstance(loaded, type) else loaded
            except Exception as exc:
                raise FlavorPluginError(
                    f"flavor plug-in {entry_point.name} = {entry_point.value} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(flavor, Flavor):
                raise FlavorPluginError(
                    f"flavor plug-in {entry_point.name} = {entry_point.value} is not a Flavor: "
                    "it needs name, loader_modules and load(metadata)"
                )
            self.register(flavor)

    def shared_modules(self, metadata: ModelMetadata) -> tuple[str, ...]:
        """The modules loading this model imports, as its flavor declares them (optional for
        plug-ins: ``shared_modules(metadata)``); a server of many models imports them before the
        fork, so workers share them instead of each importing them on a first request."""
        declared = getattr(self.resolve(metadata), "shared_modules", None)
        return tuple(declared(metadata)) if declared is not None else ()

    def resolve(self, metadata: ModelMetadata) -> Flavor:
        """The flavor for the model's ``python_function`` ``loader_module``."""
        pyfunc = metadata.pyfunc_conf
        if not pyfunc:
            raise ModelLoadError(
                f"{metadata.mlmodel_path} has no python_function flavor "
                f"(flavors: {', '.join(metadata.flavors)}); only python_function models can be served"
            )
        loader_module = pyfunc.get("loader_module")
        flavor = self.for_loader_module(loader_module) if isinstance(loader_module, str) else None
        if flavor is None:
            raise ModelLoadError(
                f"{metadata.mlmodel_path}: no flavor loads loader_module {loader_module!r}; "
                f"known loader modules: {', '.join(self.loader_modules)}"
            )
        return flavor


@functools.cache
def default_registry() -> FlavorRegistry:
    """The built-in flavors plus installed plug-ins (built once per process)."""
    registry = FlavorRegistry([SklearnFlavor(), PythonModelFlavor(), OnnxFlavor(), XGBoostFlavor(), LightGBMFlavor(),
                               PyTorchFlavor(), KerasFlavor()])
    registry.load_entry_points()
    return registry


def load_with_policy(flavor: Flavor, metadata: ModelMetadata, policy: LoadingPolicy) -> tuple[Predictor, str | None]:
    """``flavor.load(metadata)`` under ``policy``; the predictor and the format it was read from.

    A flavor that declares ``model_format(metadata)`` has the policy checked here first, before
    it opens a file; one whose ``load`` takes ``policy=`` gets it (the built-in flavors do both,
    and check again where they read the file). A plug-in that does neither cannot say what it
    would read, so it loads only under a policy that allows every format: a restricted policy
    fails closed rather than trusting it.
    """
    declared = getattr(flavor, "model_format", None)
    model_format = declared(metadata) if declared is not None else None
    if model_format is not None:
        policy.require(model_format, metadata.path)
    if _takes_policy(flavor.load):
        return flavor.load(metadata, policy=policy), model_format
    if model_format is None and not policy.allows_everything:
        raise ModelLoadError(
            f"{metadata.path}: flavor {flavor.name!r} does not say which file format it loads (model_format) nor "
            f"take the loading policy (load(metadata, policy=...)), so it is refused while {FORMATS_FLAG} "
            f"allows only {', '.join(sorted(policy.formats)) or 'no format'}"
        )
    return flavor.load(metadata), model_format


def _takes_policy(load) -> bool:
    try:
        parameters = inspect.signature(load).parameters
    except (TypeError, ValueError):
        return False
    return "policy" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
