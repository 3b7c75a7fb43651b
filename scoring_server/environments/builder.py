"""Build a model's environment with the standard library's venv and pip, or with uv."""
from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

from packaging.utils import canonicalize_name

import scoring_server

from .interpreters import Interpreter
from .spec import EnvironmentSpec, RequirementLine

_logger = logging.getLogger(__name__)
#: The requirements handed to the installer, kept in the environment to show what it was built from.
REQUIREMENTS_FILE = "model-requirements.txt"


class ModelEnvironmentError(Exception):
    """A model environment that cannot be built; the message is one line for the command line."""


def build_environment(spec: EnvironmentSpec, manager: str, interpreter: Interpreter, target: Path,
                      uv: str | None) -> None:
    """Make a virtual environment in ``target`` and install into it what the model asks for, then
    scoring-server (the installer resolves them together, so a clash is reported, not installed)."""
    if manager == "uv":
        _run(spec, [uv, "venv", "--quiet", "--relocatable", "--no-python-downloads", "--python", interpreter.path,
                    str(target)])
        # --compile-bytecode: as pip does, so that the server's first start does not compile every module.
        installer = [uv, "pip", "install", "--compile-bytecode", "--python", str(target / "bin" / "python")]
    else:
        _run(spec, [interpreter.path, "-m", "venv", str(target)])
        installer = [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                     "--no-input"]
    if spec.build_requirements:
        _run(spec, [*installer, *(line.text for line in spec.build_requirements)])
    requirements = target / REQUIREMENTS_FILE
    requirements.write_text("".join(f"{line.text}\n" for line in spec.requirements))
    _run(spec, [*installer, "-r", str(requirements), *server_requirement()])


def server_requirement() -> list[str]:
    """scoring-server as it is installed here: its source project when there is one (an editable install, so
    the environment runs this very code), else the release of this version from the package index."""
    project = Path(scoring_server.__file__).resolve().parents[1]
    if (project / "setup.cfg").is_file() or (project / "pyproject.toml").is_file():
        return ["-e", str(project)]
    return [f"scoring-server=={scoring_server.__version__}"]


def _run(spec: EnvironmentSpec, command: list[str]) -> None:
    _logger.debug("Running %s", " ".join(command))
    try:
        result = subprocess.run(command, cwd=spec.model_dir, capture_output=True, text=True)
    except OSError as exc:
        raise ModelEnvironmentError(f"cannot run {command[0]}: {exc.strerror}") from None
    _logger.debug("%s", result.stdout + result.stderr)
    if result.returncode != 0:
        raise ModelEnvironmentError(install_failure(spec, result.stdout + result.stderr))


def install_failure(spec: EnvironmentSpec, output: str) -> str:
    """One line: the installer's error, and which file of the model asked for the requirement it names."""
    errors = relevant_lines(output)
    names = {canonicalize_name(word) for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", errors)}
    culprit = next((line for line in spec.build_requirements + spec.requirements if line.name in names), None)
    return (_asked_by(spec, culprit) if culprit else f"cannot build the environment of {spec.model_dir}") + \
        f": {errors}"


def relevant_lines(output: str) -> str:
    """pip's ``ERROR:`` lines, else (uv, venv) the last lines of the output, joined into one."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")] or lines[-4:]
    return " ".join(errors)


def _asked_by(spec: EnvironmentSpec, line: RequirementLine) -> str:
    return f"{line.source.name} of {spec.model_dir} asks for {line.text}"
