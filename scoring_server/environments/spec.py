"""What a model directory asks of its environment: a Python version and requirement lines, each with the file
that asked for it (named when it cannot be installed)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

_logger = logging.getLogger(__name__)

#: Serving needs no MLflow: a model's pin of it is dropped rather than installed.
MLFLOW_DISTRIBUTIONS = frozenset({"mlflow", "mlflow-skinny"})


@dataclass(frozen=True)
class RequirementLine:
    """One line handed to the installer, and the file it comes from."""

    text: str
    source: Path

    @property
    def name(self) -> str | None:
        """The canonical distribution name, or None for an option or a path line."""
        try:
            return canonicalize_name(Requirement(self.text).name)
        except InvalidRequirement:
            return None


@dataclass(frozen=True)
class EnvironmentSpec:
    """The environment a model directory asks for (MLflow's python_env.yaml, else its requirements.txt)."""

    model_dir: Path
    python_version: str | None
    build_requirements: tuple[RequirementLine, ...]
    requirements: tuple[RequirementLine, ...]
    python_env_text: str

    def asking_for(self, name: str) -> RequirementLine | None:
        """The line that asks for the distribution ``name`` (any spelling), if any."""
        wanted = canonicalize_name(name)
        return next((line for line in self.build_requirements + self.requirements if line.name == wanted), None)


def read_spec(model_dir: Path) -> EnvironmentSpec:
    """Read ``python_env.yaml`` as MLflow writes it (``python``, ``build_dependencies``, ``dependencies`` where
    ``-r requirements.txt`` names the file); without one, ``requirements.txt`` alone."""
    python_env = model_dir / "python_env.yaml"
    if not python_env.is_file():
        requirements = model_dir / "requirements.txt"
        lines = requirement_lines(requirements) if requirements.is_file() else []
        return EnvironmentSpec(model_dir, None, (), tuple(lines), "")
    text = python_env.read_text()
    raw = yaml.safe_load(text) or {}
    version = raw.get("python")
    return EnvironmentSpec(model_dir, str(version) if version is not None else None,
                           tuple(_lines(raw.get("build_dependencies") or [], python_env)),
                           tuple(_lines(raw.get("dependencies") or [], python_env)), text)


def requirement_lines(path: Path) -> list[RequirementLine]:
    """The lines of a requirements file for the installer: comments dropped, ``-r`` files read in (paths are
    relative to the file naming them), ``-c`` made absolute, MLflow dropped."""
    return _lines(path.read_text().splitlines(), path)


def _lines(entries: list, source: Path) -> list[RequirementLine]:
    lines: list[RequirementLine] = []
    for entry in entries:
        text = str(entry).split(" #", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        option, _, argument = text.partition(" ")
        if option in ("-r", "--requirement"):
            lines += requirement_lines(source.parent / argument.strip())
        elif option in ("-c", "--constraint"):
            lines.append(RequirementLine(f"{option} {source.parent / argument.strip()}", source))
        elif (line := RequirementLine(text, source)).name in MLFLOW_DISTRIBUTIONS:
            _logger.debug("%s asks for %s: not installed, serving needs no MLflow", source, text)
        else:
            lines.append(line)
    return lines
