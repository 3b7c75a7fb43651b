"""Liveness and identity: ``/ping``, ``/health`` and ``/version``."""
from __future__ import annotations

from flask import Blueprint, Response

from .. import __version__
from ..model_slot import current_slot

blueprint = Blueprint("health", __name__)


@blueprint.get("/ping")
@blueprint.get("/health")
def ping() -> Response:
    """200 with a newline body once the model is loaded (as MLflow answers), 503 before."""
    status = 200 if current_slot().ready else 503
    return Response("\n", status=status, mimetype="application/json")


@blueprint.get("/version")
def version() -> Response:
    """The server's version string."""
    return Response(__version__, mimetype="text/plain")
