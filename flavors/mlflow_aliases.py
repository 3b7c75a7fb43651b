"""Our stand-ins for the MLflow names that model files refer to, so they load without MLflow.

Pickles written by MLflow (1.x to 3.x) reference ``mlflow.pyfunc.model.PythonModel`` and a few
other names; :func:`load_pickle` resolves those to ours. Models-from-code files import ``mlflow``;
:func:`mlflow_modules` provides a minimal fake ``mlflow`` package while such a file runs.
:func:`dump_python_model` writes pickles that MLflow itself can load.
"""
from __future__ import annotations

import pickle
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cloudpickle

from flavors.errors import ModelLoadError
from flavors.python_model import FunctionModel, PythonModel, PythonModelContext, set_model


@dataclass
class TypeHints:
    """Stand-in for ``mlflow.models.signature._TypeHints``, stored on MLflow 3 pickled models."""

    input: Any = None
    output: Any = None


ALIASES: dict[str, dict[str, Any]] = {
    "mlflow": {},
    "mlflow.models": {"set_model": set_model},
    "mlflow.models.signature": {"_TypeHints": TypeHints},
    "mlflow.pyfunc": {"PythonModel": PythonModel, "PythonModelContext": PythonModelContext},
    "mlflow.pyfunc.model": {
        "PythonModel": PythonModel,
        "PythonModelContext": PythonModelContext,
        "_FunctionPythonModel": FunctionModel,
    },
}

# Held while fake modules are installed or our classes are renamed for pickling.
_lock = threading.RLock()


class AliasUnpickler(pickle.Unpickler):
    """Unpickler resolving MLflow names through :data:`ALIASES`; ``path`` is for error messages."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        alias = ALIASES.get(module, {}).get(name)
        if alias is not None:
            return alias
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as exc:
            if module.partition(".")[0] != "mlflow":
                raise
            provided = ", ".join(f"{mod}.{attr}" for mod, attrs in ALIASES.items() for attr in attrs)
            raise ModelLoadError(
                f"{self.path} needs {module}.{name} from MLflow, which is not installed; "
                f"scoring-server provides only {provided}"
            ) from exc


def load_pickle(path: Path) -> Any:
    """Unpickle ``path`` (pickle or cloudpickle); any failure is a ModelLoadError naming the file."""
    try:
        with open(path, "rb") as f:
            return AliasUnpickler(f, path).load()
    except ModelLoadError:
        raise
    except FileNotFoundError as exc:
        raise ModelLoadError(f"model file not found: {path}") from exc
    except Exception as exc:
        raise ModelLoadError(f"could not unpickle {path}: {type(exc).__name__}: {exc}") from exc


@contextmanager
def mlflow_modules() -> Iterator[None]:
    """Install fake ``mlflow``, ``mlflow.models``, ``mlflow.pyfunc``... modules holding only ALIASES."""
    with _lock:
        saved = {name: sys.modules.get(name) for name in ALIASES}
        fakes = {name: _module(name, attrs) for name, attrs in ALIASES.items()}
        for name, module in fakes.items():
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(fakes[parent], child, module)
        sys.modules.update(fakes)
        try:
            yield
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module


def dump_python_model(obj: Any, path: Path) -> None:
    """cloudpickle ``obj``, referring to our PythonModel as ``mlflow.pyfunc.model.PythonModel``.

    That is the reference MLflow's own pickles contain, so both MLflow and we can load the file.
    """
    with mlflow_modules(), open(path, "wb") as f:
        real_module = PythonModel.__module__
        PythonModel.__module__ = "mlflow.pyfunc.model"
        try:
            cloudpickle.dump(obj, f)
        finally:
            PythonModel.__module__ = real_module


def _module(name: str, attrs: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType(name, "scoring-server stand-in for MLflow (no MLflow installed)")
    module.__dict__.update(attrs)
    return module
