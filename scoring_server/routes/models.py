"""Routes of a server of many models: per-model scoring, listing, and the admin API."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from ..errors import BAD_REQUEST, ENDPOINT_NOT_FOUND, ScoringError
from ..model_catalog import ModelCatalog, ModelEntry
from ..protocols import PROTOCOLS
from ..routing import current_catalog
from .scoring import score_with

blueprint = Blueprint("models", __name__)


def _catalog() -> ModelCatalog:
    return current_catalog()


@blueprint.post("/models/<name>/invocations")
def model_invocations(name: str) -> Response:
    """The scoring protocol of ``/invocations``, for the model ``name``."""
    return score_with(_catalog().scorer(name))


@blueprint.get("/models")
def list_models() -> Response:
    """Every model: name, URI, version, loaded or not, last used (for this worker)."""
    return jsonify({"models": _catalog().status()})


@blueprint.get("/models/<name>")
def describe_model(name: str) -> Response:
    """One model's flavor, signature, input example and version (loads it if needed)."""
    return jsonify(_catalog().describe(name))


@blueprint.post("/models")
def add_model() -> tuple[Response, int]:
    """Admin API: ``{"name": ..., "uri": ..., "protocol"?: ...}`` adds a model (this worker)."""
    _require_admin()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("uri"), str):
        raise ScoringError('Send {"name": NAME, "uri": MODEL_URI}', BAD_REQUEST)
    if body.get("protocol") not in (None, *PROTOCOLS):
        raise ScoringError(f"protocol must be one of {list(PROTOCOLS)}", BAD_REQUEST)
    _catalog().add(ModelEntry(body["name"], body["uri"], body.get("protocol")))
    return jsonify({"name": body["name"], "uri": body["uri"]}), 201


@blueprint.delete("/models/<name>")
def remove_model(name: str) -> Response:
    """Admin API: unload and remove a model (this worker)."""
    _require_admin()
    _catalog().remove(name)
    return jsonify({"name": name, "removed": True})


def _require_admin() -> None:
    if not current_app.config["SCORING_SERVER"].admin_api:
        raise ScoringError("The admin API is off (enable it with --admin-api).", ENDPOINT_NOT_FOUND, 404)
