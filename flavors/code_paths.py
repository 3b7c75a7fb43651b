"""Python code shipped inside a model directory (the ``code`` key of a flavor section).

Each model's code is its own. While a model loads, its ``code`` directory is first on
``sys.path``; when the load ends, ``sys.path`` is restored and the modules imported from that
directory are removed from ``sys.modules``. Two models that each ship a ``features.py`` thus
each import their own, even in one process.

What a model may rely on: every module of its code directory imported *during the load* - at
the top level of a models-from-code file or of a module it imports, in ``load_context``, or by
unpickling (a pickled ``features.some_fn`` or a class defined in ``features``) - stays bound to
the model's objects, which keep working after the load. Importing such a module later, e.g.
``import features`` inside ``predict``, fails: the directory is no longer on ``sys.path`` and
another model's ``features`` may have been loaded since. A module name that is already imported
in the process when the model loads (a standard or installed module of the same name) resolves
to that module, as in MLflow.
"""
from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flavors.errors import ModelLoadError
from flavors.mlmodel import MLMODEL_FILE

CODE_DIR = "code"

# Held for the whole of every model load (re-entrant, for a model that loads another): a code
# directory on sys.path is seen by any import in the process, and set_model() is process-wide.
LOAD_LOCK = threading.RLock()


def copy_code_paths(code_paths: Iterable[str | Path] | None, model_dir: Path) -> str | None:
    """Copy each file or directory into ``<model_dir>/code/``; the ``code`` value, None if none."""
    if not code_paths:
        return None
    target = model_dir / CODE_DIR
    target.mkdir()
    for source in map(Path, code_paths):
        if source.is_dir():
            shutil.copytree(source, target / source.name)
        elif source.is_file():
            shutil.copy2(source, target / source.name)
        else:
            raise FileNotFoundError(f"code path not found: {source}")
    return CODE_DIR


@contextmanager
def model_code(model_dir: Path, code: str | None) -> Iterator[Path | None]:
    """Hold :data:`LOAD_LOCK` and make ``<model_dir>/<code>`` importable for the duration of a load.

    Yields the code directory (None when the model has no ``code``). On exit, restores
    ``sys.path`` and forgets the modules imported from that directory (see the module docstring).
    """
    with LOAD_LOCK:
        code_dir = _code_dir(model_dir, code)
        if code_dir is None:
            yield None
            return
        saved_path, imported_before = list(sys.path), set(sys.modules)
        sys.path.insert(0, str(code_dir))
        try:
            yield code_dir
        finally:
            sys.path[:] = saved_path
            sys.path_importer_cache.pop(str(code_dir), None)
            _forget_modules(code_dir, set(sys.modules) - imported_before)


def provides_module(code_dir: Path | None, module_name: str | None) -> bool:
    """Whether ``code_dir`` holds the top-level module or package of ``module_name``."""
    if code_dir is None or not module_name:
        return False
    top = module_name.partition(".")[0]
    return (code_dir / f"{top}.py").is_file() or (code_dir / top).is_dir()


def _code_dir(model_dir: Path, code: str | None) -> Path | None:
    if not code:
        return None
    path = model_dir / code
    if not path.is_dir():
        raise ModelLoadError(f"code directory {path} named in {model_dir / MLMODEL_FILE} does not exist")
    return path


def _forget_modules(code_dir: Path, names: set[str]) -> None:
    """Remove from ``sys.modules`` those of ``names`` whose source lies in ``code_dir``."""
    for name in names:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        locations = [file] if file else list(getattr(module, "__path__", None) or ())  # namespace packages
        if any(Path(location).is_relative_to(code_dir) for location in locations):
            sys.modules.pop(name, None)
