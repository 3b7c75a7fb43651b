"""Models-from-code: a ``.py`` file that builds the model and hands it to ``set_model``."""
from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

from flavors.code_paths import LOAD_LOCK
from flavors.errors import ModelLoadError
from flavors.mlflow_aliases import mlflow_builtins
from flavors.python_model import take_model


def load_code_model(path: Path) -> Any:
    """Run the file at ``path`` and return the object it passed to ``set_model``.

    The file may call ``flavors.python_model.set_model`` or, as written for MLflow,
    ``mlflow.models.set_model`` and subclass ``mlflow.pyfunc.PythonModel``: its own imports of
    ``mlflow`` names resolve to stand-ins (:func:`~flavors.mlflow_aliases.mlflow_builtins`), so
    no fake ``mlflow`` is ever visible to the rest of the process. The file's module is in
    ``sys.modules`` only while it runs.
    """
    if not path.is_file():
        raise ModelLoadError(f"models-from-code file not found: {path}")
    # A fresh module name per load, so that the file runs again even if loaded before.
    module_name = f"_scoring_server_code_model_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    module.__builtins__ = mlflow_builtins()
    with LOAD_LOCK:  # set_model() hands the model over through process-wide state
        take_model()  # forget any model set outside a load
        sys.modules[module_name] = module  # for code that looks itself up while running (dataclasses, typing)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelLoadError(f"running models-from-code file {path} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.modules.pop(module_name, None)
        model = take_model()
    if model is None:
        raise ModelLoadError(f"{path} did not call set_model(); models-from-code files must set their model")
    return model
