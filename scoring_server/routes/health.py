"""Liveness and identity: ``/ping``, ``/health`` and ``/version``."""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from .. import __version__
from ..model_selection import current_catalog

blueprint = Blueprint("health", __name__)


@blueprint.get("/ping")
@blueprint.get("/health")
def ping() -> Response:
    """200 with a newline body once the model is loaded (as MLflow answers), 503 before.
    A server of many models is ready at once: its models load on their first request."""
    ready = current_catalog() is not None or current_app.extensions["model_slot"].ready
    status = 200 if ready else 503
    return Response("\n", status=status, mimetype="application/json")


@blueprint.get("/version")
def version() -> Response:
    """The server's version string."""
    return Response(__version__, mimetype="text/plain")
