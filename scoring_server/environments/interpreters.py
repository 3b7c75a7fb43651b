"""Which Python runs a model's environment: the version its python_env.yaml names when this machine has it."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

_logger = logging.getLogger(__name__)
_VERSION_SCRIPT = "import sys; print('.'.join(map(str, sys.version_info[:3])))"


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # e.g. "3.11.7"


def current_interpreter() -> Interpreter:
    return Interpreter(sys.executable, ".".join(map(str, sys.version_info[:3])))


def uv_binary() -> str | None:
    """``uv`` on PATH, else next to this Python (installed with ``pip install uv`` but not activated)."""
    return shutil.which("uv") or shutil.which("uv", path=sysconfig.get_path("scripts"))


def find_interpreter(wanted: str | None, asked_by: Path, uv: str | None) -> Interpreter:
    """An interpreter of the ``wanted`` major.minor version (patch releases share an ABI); with a one-line
    warning, this one when the machine has none."""
    current = current_interpreter()
    if wanted is None or _minor(wanted) == _minor(current.version):
        return current
    for candidate in _candidates(_minor(wanted), uv):
        found = _probe(candidate)
        if found and _minor(found.version) == _minor(wanted):
            return found
    _logger.warning("%s asks for Python %s, which this machine does not have (python%s); using Python %s (%s)",
                    asked_by, wanted, _minor(wanted), current.version, current.path)
    return current


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _candidates(minor: str, uv: str | None) -> list[str]:
    """``pythonX.Y`` on PATH, pyenv's installs (what MLflow uses), then what ``uv python find`` knows."""
    candidates = [path for path in [shutil.which(f"python{minor}")] if path]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(path) for path in pyenv_root.glob(f"versions/{minor}.*/bin/python{minor}"))
    if uv:
        found = _run([uv, "python", "find", "--no-python-downloads", minor])
        candidates += [found] if found else []
    return candidates


def _probe(path: str) -> Interpreter | None:
    """The interpreter at ``path`` if it runs (a pyenv shim of an inactive version does not)."""
    version = _run([path, "-c", _VERSION_SCRIPT])
    return Interpreter(path, version) if version else None


def _run(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
