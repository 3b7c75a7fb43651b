"""Readiness, liveness and identity: ``/ping``, ``/health`` and ``/version``."""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from .. import __version__
from ..model_selection import current_catalog
from ..workers.context import server_stopping

blueprint = Blueprint("health", __name__)


@blueprint.get("/ping")
def ping() -> Response:
    """Readiness: 200 with a newline body once the model is loaded (as MLflow answers), 503 before,
    and 503 again once the server is stopping (SIGTERM), so that load balancers send nothing more.
    A server of many models is ready at once: its models load on their first request."""
    ready = current_catalog() is not None or current_app.extensions["model_slot"].ready
    status = 200 if ready and not server_stopping() else 503
    return Response("\n", status=status, mimetype="application/json")


@blueprint.get("/health")
def health() -> Response:
    """Liveness: 200 whenever the server answers, loading and draining included (alive, if not
    ready: a liveness probe must not restart a server that is loading its model or draining)."""
    return Response("\n", status=200, mimetype="application/json")


@blueprint.get("/version")
def version() -> Response:
    """The server's version string."""
    return Response(__version__, mimetype="text/plain")
