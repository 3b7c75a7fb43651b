"""``GET /openapi.json``: what this server accepts and answers, for clients and fuzzers."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..openapi import openapi_document

blueprint = Blueprint("openapi", __name__)


@blueprint.get("/openapi.json")
def spec() -> Response:
    """The OpenAPI 3.1 document, built from the model served now."""
    return jsonify(openapi_document(current_app))
