"""Scoring a model's saved serving input example through the full pipeline, before deployment."""
from __future__ import annotations

import json

from flavors import load_serving_input_example

from . import content_types
from .errors import ScoringError
from .pipeline import Scorer


class ServingInputCheckError(ValueError):
    """The model cannot score its own serving input example."""


def check_serving_input_example(scorer: Scorer) -> bytes:
    """Score the example exactly as ``/invocations`` would; return the response body.

    Raises :class:`ServingInputCheckError` when there is no example or scoring it fails.
    """
    model = scorer.model
    example = load_serving_input_example(model.metadata)
    if example is None:
        raise ServingInputCheckError(f"{model.metadata.path} has no saved serving input example to check")
    try:
        return scorer.score(json.dumps(example).encode(), content_types.JSON)
    except ScoringError as exc:
        cause = f" (the model raised {type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
        raise ServingInputCheckError(
            f"the serving input example of {model.metadata.path} fails: {exc.status} {exc.error_code}: "
            f"{exc.message}{cause}"
        ) from exc
