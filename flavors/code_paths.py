"""Python code shipped inside a model directory (the ``code`` key of a flavor section)."""
from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from flavors.errors import ModelLoadError
from flavors.mlmodel import MLMODEL_FILE

CODE_DIR = "code"


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


def add_code_to_sys_path(model_dir: Path, code: str | None) -> None:
    """Put ``<model_dir>/<code>`` first on ``sys.path`` so the model's own modules import."""
    if not code:
        return
    path = model_dir / code
    if not path.is_dir():
        raise ModelLoadError(f"code directory {path} named in {model_dir / MLMODEL_FILE} does not exist")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
