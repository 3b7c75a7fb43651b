"""Model environments (``--env-manager virtualenv|uv``): the model's own Python environment, built from its
``python_env.yaml`` and ``requirements.txt`` plus scoring-server, cached, and the command re-run inside it.

``local`` (the server's own environment) needs nothing from here.
"""
from __future__ import annotations

from .builder import ModelEnvironmentError
from .cache import cache_root
from .prepare import BUILT_MANAGERS, prepare_environment, rerun_in_environment
from .spec import read_spec

__all__ = ["BUILT_MANAGERS", "ModelEnvironmentError", "cache_root", "prepare_environment", "read_spec",
           "rerun_in_environment"]
