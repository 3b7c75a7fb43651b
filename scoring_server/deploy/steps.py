"""The steps a scoring-server container image runs: ``install`` and ``check`` while it is built, ``serve`` as its CMD.

``python steps.py install|check|serve [serve flags]``. The Dockerfile of ``generate-dockerfile`` runs this file
from its build context, and the test suite runs it the same way in a fresh virtual environment, so the image's
recipe is one thing and is tested where no container runtime is. ``install`` runs before scoring-server is
installed, so only the standard library is imported at the top.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: MLflow's place for the model in its images; ``MODEL_DIR`` moves it (the Dockerfile sets it too).
MODEL_DIR = Path(os.environ.get("MODEL_DIR", "/opt/ml/model"))
#: Beside this script in the build context: the model's requirements (MLflow left out) and scoring-server's wheel.
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
WHEELS_DIR = Path(__file__).resolve().parent / "dist"


def install() -> None:
    """Install scoring-server and the model's requirements in one pip run, so that pip resolves them together."""
    wheels = sorted(str(path) for path in WHEELS_DIR.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"install: no scoring-server wheel in {WHEELS_DIR}")
    returncode = subprocess.run([sys.executable, "-m", "pip", "install", "-r", str(REQUIREMENTS), *wheels]).returncode
    if returncode:
        raise SystemExit(f"install: pip failed (exit {returncode}); its output is above")


def check() -> None:
    """Load the model and score its saved serving input example, if it has one, as ``scoring-server validate``
    does: a model that cannot serve fails the image's build, not its first request."""
    from flavors import ModelLoadError, load_model, load_serving_input_example
    from scoring_server.catalog.loading import loading_policy
    from scoring_server.config import config_from_environment
    from scoring_server.pipeline import Scorer
    from scoring_server.serving_input_check import (
        ServingInputCheckError,
        check_serving_input_example,
    )

    try:
        model = load_model(str(MODEL_DIR), policy=loading_policy(config_from_environment()))
        if load_serving_input_example(model.metadata) is None:
            print(f"check: {MODEL_DIR} loads; it has no serving input example to score")
            return
        answer = check_serving_input_example(Scorer(model)).decode()
        print(f"check: {MODEL_DIR} scores its serving input example: {answer}")
    except (ModelLoadError, ServingInputCheckError) as exc:
        raise SystemExit(f"check: {exc}") from None


def serve(flags: list[str]) -> None:
    """Become ``scoring-server serve -m MODEL_DIR FLAGS`` (exec: the server gets the container's signals).

    Only the flags given here are fixed; every other setting comes from ``SCORING_SERVER_*`` and ``GUNICORN_CMD_ARGS``.
    """
    os.execv(sys.executable, [sys.executable, "-m", "scoring_server", "serve", "-m", str(MODEL_DIR), *flags])


def main(argv: list[str]) -> None:
    step, rest = (argv[0], argv[1:]) if argv else ("", [])
    if step == "serve":
        serve(rest)
    elif step in ("install", "check") and not rest:
        {"install": install, "check": check}[step]()
    else:
        raise SystemExit("usage: python steps.py install | check | serve [scoring-server serve flags]")


if __name__ == "__main__":
    main(sys.argv[1:])
