"""Our stand-ins for the MLflow names that model files refer to, so they load without MLflow.

Pickles written by MLflow (1.x to 3.x) reference ``mlflow.pyfunc.model.PythonModel`` and a few
other names; :func:`load_pickle` resolves those to ours. Models-from-code files import ``mlflow``;
:func:`mlflow_builtins` gives such a file an ``__import__`` that resolves those imports to
stand-in modules. Loading thus never touches ``sys.modules``. :func:`dump_python_model` writes
pickles that MLflow itself can load (and, when saving only, briefly does; see there).
"""
from __future__ import annotations

import builtins
import pickle
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cloudpickle

from flavors.code_paths import LOAD_LOCK
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


def mlflow_builtins() -> dict[str, Any]:
    """A ``__builtins__`` for a models-from-code file whose ``__import__`` knows MLflow's names.

    ``import mlflow``, ``from mlflow.pyfunc import PythonModel``, ... in that file (including
    inside the functions it defines) get fresh stand-in modules holding only :data:`ALIASES`;
    every other import goes to the process's ``__import__``. Modules the file imports see the
    real import system: only the file itself is written against ``mlflow``.
    """
    stand_ins = _stand_in_modules()
    process_import = builtins.__import__

    def scoped_import(
        name: str,
        globals: dict | None = None,
        locals: dict | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level or name.partition(".")[0] != "mlflow":
            return process_import(name, globals, locals, fromlist, level)
        if name not in stand_ins:
            raise ModuleNotFoundError(
                f"No module named {name!r}: MLflow is not installed; scoring-server stands in for "
                f"{', '.join(ALIASES)} only",
                name=name,
            )
        return stand_ins[name] if fromlist else stand_ins["mlflow"]

    return {**vars(builtins), "__import__": scoped_import}


def dump_python_model(obj: Any, path: Path) -> None:
    """cloudpickle ``obj``, referring to our PythonModel as ``mlflow.pyfunc.model.PythonModel``.

    That is the reference MLflow's own pickles contain, so both MLflow and we can load the file.
    """
    # Writing that reference needs PythonModel.__module__ renamed and stand-in mlflow modules in
    # sys.modules for the duration: the C pickler (which cloudpickle extends) writes a class
    # reference only after importing the class's __module__ through sys.modules and finding the
    # very same class there. A reducer_override cannot avoid that: a string it returns takes
    # that same route, and a reduce tuple would write a call (getattr(<module>, "PythonModel")),
    # not MLflow's plain reference, and is flagged by pickle scanners. This runs when saving,
    # never when serving, and under LOAD_LOCK, so no model loads while the names are swapped.
    with LOAD_LOCK, _installed(_stand_in_modules()), open(path, "wb") as f:
        real_module = PythonModel.__module__
        PythonModel.__module__ = "mlflow.pyfunc.model"
        try:
            cloudpickle.dump(obj, f)
        finally:
            PythonModel.__module__ = real_module


@contextmanager
def _installed(modules: dict[str, types.ModuleType]) -> Iterator[None]:
    """Put ``modules`` in ``sys.modules`` for the duration, then restore what was there."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _stand_in_modules() -> dict[str, types.ModuleType]:
    """A fresh ``mlflow`` package tree holding :data:`ALIASES`, each submodule set on its parent."""
    modules = {name: _module(name, attrs) for name, attrs in ALIASES.items()}
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    return modules


def _module(name: str, attrs: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType(name, "scoring-server stand-in for MLflow (no MLflow installed)")
    module.__dict__.update(attrs)
    return module
