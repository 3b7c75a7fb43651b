"""``POST /invocations``: the MLflow scoring endpoint."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..errors import ScoringError, TEMPORARILY_UNAVAILABLE
from ..model_slot import current_slot

blueprint = Blueprint("scoring", __name__)


@blueprint.post("/invocations")
def invocations() -> Response:
    """Score the request body with the loaded model."""
    scorer = g.scorer = current_slot().scorer
    if scorer is None:
        raise ScoringError("The model is not loaded yet.", TEMPORARILY_UNAVAILABLE, status=503)
    body = scorer.score(request.get_data(cache=False), request.headers.get("Content-Type"))
    return Response(body, mimetype="application/json")


@blueprint.after_request
def name_the_model(response: Response) -> Response:
    """Every scoring answer, errors included, names the model and version that gave it."""
    scorer = g.get("scorer")
    if scorer is not None:
        response.headers["X-Model-Name"] = scorer.identity.name
        if scorer.identity.version is not None:
            response.headers["X-Model-Version"] = scorer.identity.version
    return response
