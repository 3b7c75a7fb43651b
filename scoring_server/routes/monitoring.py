"""``GET /monitoring``: each model's traffic, latency against its objective, drift and staleness."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..model_selection import served_scorers
from ..monitoring.drift import drift_report
from ..monitoring.exposition import collect
from ..monitoring.summary import summarize

blueprint = Blueprint("monitoring", __name__)


@blueprint.get("/monitoring")
def summary() -> Response:
    """The models' health as JSON (docs/monitoring.md says what each field means)."""
    served = [scorer.served_model() for scorer in served_scorers(current_app)]
    return jsonify(summarize(collect(current_app), current_app.config["SCORING_SERVER"], drift_report(current_app),
                             served))
