"""``POST /invocations``: the MLflow scoring endpoint."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from ..config import ServerConfig
from ..decoding import RequestBody
from ..decoding.limits import DecodeLimits, applying
from ..http_body import read_body
from ..model_selection import select_scorer
from ..pipeline import Scorer

blueprint = Blueprint("scoring", __name__)


@blueprint.post("/invocations")
def invocations() -> Response:
    """Score the request body with the served model (or, serving several, the one it names)."""
    body = request_body()
    return score_with(select_scorer(body), body)


def request_body() -> RequestBody:
    """This request's body (read whole, within ``max_request_bytes``), its Content-Type, and the
    limits on what it may decode into."""
    config = current_app.config["SCORING_SERVER"]
    limits = current_app.extensions["decode_limits"]
    return RequestBody(read_body(request.environ, config.max_request_bytes), request.headers.get("Content-Type"), limits)


def score_with(scorer: Scorer, body: RequestBody) -> Response:
    """Score ``body`` with ``scorer`` within the body's limits; the answer will name its model."""
    g.scorer = scorer
    with applying(body.limits):
        answer = scorer.score_body(body)
    return Response(answer, mimetype="application/json")


def decode_limits(config: ServerConfig) -> DecodeLimits:
    """What a request may decode into on a server configured by ``config``: a Parquet body (or a
    string tensor) at most 4 × ``max_request_bytes`` of decoded data (see docs/security.md)."""
    return DecodeLimits(config.max_rows, config.max_cells, config.max_json_depth, 4 * config.max_request_bytes)


@blueprint.after_app_request
def name_the_model(response: Response) -> Response:
    """Every scoring answer, errors included, names the model and version that gave it."""
    scorer = g.get("scorer")
    if scorer is not None:
        response.headers["X-Model-Name"] = scorer.identity.name
        if scorer.identity.version is not None:
            response.headers["X-Model-Version"] = scorer.identity.version
    return response
