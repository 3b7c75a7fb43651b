"""``POST /invocations``: the MLflow scoring endpoint."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..decoding import RequestBody
from ..model_selection import select_scorer
from ..pipeline import Scorer

blueprint = Blueprint("scoring", __name__)


@blueprint.post("/invocations")
def invocations() -> Response:
    """Score the request body with the served model (or, serving several, the one it names)."""
    body = request_body()
    return score_with(select_scorer(body), body)


def request_body() -> RequestBody:
    """This request's body and Content-Type."""
    return RequestBody(request.get_data(cache=False), request.headers.get("Content-Type"))


def score_with(scorer: Scorer, body: RequestBody) -> Response:
    """Score ``body`` with ``scorer``; the answer will name its model."""
    g.scorer = scorer
    return Response(scorer.score_body(body), mimetype="application/json")


@blueprint.after_app_request
def name_the_model(response: Response) -> Response:
    """Every scoring answer, errors included, names the model and version that gave it."""
    scorer = g.get("scorer")
    if scorer is not None:
        response.headers["X-Model-Name"] = scorer.identity.name
        if scorer.identity.version is not None:
            response.headers["X-Model-Version"] = scorer.identity.version
    return response
