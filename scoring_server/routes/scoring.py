"""``POST /invocations``: the MLflow scoring endpoint."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..pipeline import Scorer
from ..routing import request_scorer

blueprint = Blueprint("scoring", __name__)


@blueprint.post("/invocations")
def invocations() -> Response:
    """Score the request body with the served model (or, serving several, the one it names)."""
    return score_with(request_scorer())


def score_with(scorer: Scorer) -> Response:
    """Score the request body with ``scorer``; the answer will name its model."""
    g.scorer = scorer
    body = scorer.score(request.get_data(cache=False), request.headers.get("Content-Type"))
    return Response(body, mimetype="application/json")


@blueprint.after_app_request
def name_the_model(response: Response) -> Response:
    """Every scoring answer, errors included, names the model and version that gave it."""
    scorer = g.get("scorer")
    if scorer is not None:
        response.headers["X-Model-Name"] = scorer.identity.name
        if scorer.identity.version is not None:
            response.headers["X-Model-Version"] = scorer.identity.version
    return response
