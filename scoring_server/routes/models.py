"""Routes of a server of many models: per-model scoring, listing, and the admin API.

The admin API (``POST /models``, ``DELETE /models/<name>``) is off unless ``--admin-api``; its
callers need the ``admin`` scope (checked for every route by ``security.auth``, and asked again
here), and it adds only ``models:/`` URIs and model directories inside ``--allowed-model-roots``
(``catalog/roots.py``), loaded under the server's loading policy like every other model.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..catalog.catalog import ModelCatalog
from ..config import ConfigError, model_entry
from ..errors import BAD_REQUEST, ENDPOINT_NOT_FOUND, PERMISSION_DENIED, ScoringError
from ..model_selection import current_catalog
from ..security import ADMIN, caller_has_scope
from .scoring import request_body, score_with

blueprint = Blueprint("models", __name__)


def _catalog() -> ModelCatalog:
    return current_catalog()


@blueprint.post("/models/<name>/invocations")
def model_invocations(name: str) -> Response:
    """The scoring protocol of ``/invocations``, for the model ``name``."""
    return score_with(_catalog().scorer(name), request_body())


@blueprint.get("/models")
def list_models() -> Response:
    """Every model: name, URI (local paths for admins only), version, loaded or not, last used (this worker)."""
    return jsonify({"models": _catalog().status()})


@blueprint.get("/models/<name>")
def describe_model(name: str) -> Response:
    """One model's flavor, signature, input example and version (loads it if needed)."""
    return jsonify(_catalog().describe(name))


@blueprint.post("/models")
def add_model() -> tuple[Response, int]:
    """Admin API: ``{"name": ..., "uri": ..., "protocol"?: ...}`` adds a model (every worker)."""
    catalog = _admin_catalog()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("uri"), str):
        raise ScoringError('Send {"name": NAME, "uri": MODEL_URI}', BAD_REQUEST)
    try:
        entry = model_entry(body["name"], {key: value for key, value in body.items() if key != "name"}, "request")
    except ConfigError as exc:
        raise ScoringError(str(exc), BAD_REQUEST) from None
    entry = catalog.add(entry)
    return jsonify({"name": entry.name, "uri": entry.uri}), 201


@blueprint.delete("/models/<name>")
def remove_model(name: str) -> Response:
    """Admin API: unload and remove a model (every worker)."""
    _admin_catalog().remove(name)
    return jsonify({"name": name, "removed": True})


def _admin_catalog() -> ModelCatalog:
    catalog = _catalog()
    if catalog.sources.admin is None:
        raise ScoringError("The admin API is off (enable it with --admin-api).", ENDPOINT_NOT_FOUND, 404)
    if not caller_has_scope(ADMIN):  # security.auth refuses first; asked again so no slip opens it
        raise ScoringError("This API key may not do this: it needs the 'admin' scope.", PERMISSION_DENIED, 403)
    return catalog
