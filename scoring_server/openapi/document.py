"""The OpenAPI 3.1 document of a running app: every endpoint it serves, the ``/invocations``
bodies its model's signature accepts in each format, and the error answers."""
from __future__ import annotations

from typing import Any

from flask import Flask

from .. import __version__, content_types
from ..pipeline import Scorer
from .schemas import ERROR, request_schemas

_ERRORS = {
    "400": "The body does not decode, or does not fit the model's signature or params.",
    "413": "The body is larger than the server accepts.",
    "415": "The Content-Type is not one the protocol reads.",
    "503": "The model is not loaded (yet), or cannot be.",
}
_AUTH_ERRORS = {"401": "No API key, or an unknown one.", "403": "The API key lacks the scope this endpoint needs."}
_PING = {"description": "The server is ready: an empty line (as MLflow answers); 503 while loading or draining.",
         "content": {"application/json": {"schema": {"type": "string"}}}}


def openapi_document(app: Flask) -> dict[str, Any]:
    """The document for ``app`` as it serves now (a followed model's signature may change)."""
    config = app.config["SCORING_SERVER"]
    catalog = app.extensions.get("model_catalog")
    slot = app.extensions.get("model_slot")
    scorer = slot.scorer if slot is not None else None
    secured = bool(config.api_keys_file)
    paths = {
        "/ping": {"get": _operation("Readiness", {"200": _PING}, secured=False)},
        "/health": {"get": _operation("Liveness: 200 whenever the server answers, loading and draining included",
                                      {"200": _PING}, secured=False)},
        "/version": {"get": _operation("The server's version", {"200": _text("The version string")}, secured)},
        "/openapi.json": {"get": _operation("This document", {"200": _json("OpenAPI 3.1", {"type": "object"})},
                                            secured)},
        "/invocations": {"post": _scoring_operation(scorer, secured, multi_model=catalog is not None)},
    }
    if catalog is not None:
        paths.update(_catalog_paths(secured, config.admin_api))
    document = {
        "openapi": "3.1.0",
        "info": {"title": "scoring-server", "version": __version__,
                 "description": "MLflow's scoring protocol; see docs/protocol.md."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR}},
    }
    if secured:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return document


def _scoring_operation(scorer: Scorer | None, secured: bool, multi_model: bool = False) -> dict:
    signature = scorer.signature if scorer is not None else None
    formats = request_schemas(signature)
    content = {
        content_types.JSON: {"schema": {"oneOf": list(formats.values())}},
        content_types.CSV: {"schema": {"type": "string"}},
        content_types.PARQUET: {"schema": {"type": "string", "format": "binary"}},
    }
    summary = "Score rows with the model" + (" named by X-Model-Name, params or the default" if multi_model else "")
    operation = _operation(summary, {"200": _json("The predictions", {
        "type": "object", "properties": {"predictions": {}}})}, secured, errors=True)
    operation["requestBody"] = {"required": True, "content": content}
    if multi_model:
        operation["parameters"] = [{"name": "X-Model-Name", "in": "header", "required": False,
                                    "schema": {"type": "string"}}]
    return operation


def _catalog_paths(secured: bool, admin: bool) -> dict:
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    model = {"type": "object", "properties": {"name": {"type": "string"}, "loaded": {"type": "boolean"},
                                              "version": {"type": ["string", "null"]}}}
    describe = _operation("One model: flavor, signature, version", {"200": _json("The model", model)}, secured,
                          errors=True)
    scoring = _scoring_operation(None, secured)
    paths = {
        "/models": {"get": _operation("Every served model", {"200": _json("The models", {
            "type": "object", "properties": {"models": {"type": "array", "items": model}}})}, secured)},
        "/models/{name}": {"get": {**describe, "parameters": name}},
        "/models/{name}/invocations": {"post": {**scoring, "parameters": name}},
    }
    if admin:
        entry = {"type": "object", "required": ["name", "uri"], "properties": {
            "name": {"type": "string"}, "uri": {"type": "string"},
            "protocol": {"enum": ["mlflow2", "mlflow1", "auto"]}}}
        add = _operation("Serve another model (admin)", {"201": _json("Added", entry)}, secured, errors=True)
        add["requestBody"] = {"required": True, "content": {content_types.JSON: {"schema": entry}}}
        paths["/models"]["post"] = add
        paths["/models/{name}"]["delete"] = {
            **_operation("Stop serving a model (admin)", {"200": _json("Removed", {"type": "object"})}, secured,
                         errors=True), "parameters": name}
    return paths


def _operation(summary: str, responses: dict, secured: bool, errors: bool = False) -> dict:
    responses = dict(responses)
    if errors:
        responses.update({code: _error(text) for code, text in _ERRORS.items()})
    if secured:
        responses.update({code: _error(text) for code, text in _AUTH_ERRORS.items()})
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if secured:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return operation


def _error(description: str) -> dict:
    return {"description": description,
            "content": {content_types.JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {content_types.JSON: {"schema": schema}}}


def _text(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}
