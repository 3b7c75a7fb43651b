"""From a model directory and an env manager to the command re-run in the model's environment."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

import scoring_server

from .builder import ModelEnvironmentError, build_environment
from .cache import cache_root, cached_environment
from .interpreters import Interpreter, find_interpreter, uv_binary
from .spec import EnvironmentSpec, read_spec

_logger = logging.getLogger(__name__)
#: The env managers that build an environment (``local`` runs in this one; conda is refused).
BUILT_MANAGERS = ("virtualenv", "uv")


def prepare_environment(model_dir: Path, manager: str) -> Path:
    """The Python executable of the model's environment, built now unless cached."""
    uv = uv_binary()
    if manager == "uv" and uv is None:
        raise ModelEnvironmentError("--env-manager uv: the uv command was not found; install it with "
                                    "`pip install uv`, or use --env-manager virtualenv")
    spec = read_spec(model_dir)
    interpreter = find_interpreter(spec.python_version, model_dir / "python_env.yaml", uv)
    key = environment_key(spec, manager, interpreter)

    def build(target: Path) -> None:
        _logger.info("Building the %s environment of %s (Python %s) in %s", manager, model_dir, interpreter.version,
                     target)
        build_environment(spec, manager, interpreter, target, uv)

    return cached_environment(cache_root(), key, build) / "bin" / "python"


def environment_key(spec: EnvironmentSpec, manager: str, interpreter: Interpreter) -> str:
    """What decides an environment's contents; the same model copied elsewhere reuses it."""
    inputs = [manager, interpreter.version, scoring_server.__version__, spec.python_env_text,
              [line.text for line in spec.build_requirements], [line.text for line in spec.requirements]]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:32]


def rerun_in_environment(python: Path, argv: list[str]) -> NoReturn:
    """Replace this process by the same command in the model's environment, so that signals (SIGTERM drains
    the server) and the exit status are the server's own."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [str(python), "-m", "scoring_server", *with_local_env_manager(argv)])


def with_local_env_manager(argv: list[str]) -> list[str]:
    """``argv`` with its ``--env-manager`` set to ``local``: inside the environment, the command runs there."""
    args: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg == "--env-manager":
            skip_value = True
        elif not arg.startswith("--env-manager="):
            args.append(arg)
    return [*args, "--env-manager", "local"]
