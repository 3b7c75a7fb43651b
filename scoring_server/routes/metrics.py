"""``GET /metrics``: the server's Prometheus metrics, summed over all its workers."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..monitoring.exposition import render

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus' text format, or OpenMetrics when the scraper asks for it."""
    body, content_type = render(current_app, request.headers.get("Accept"))
    return Response(body, content_type=content_type)
