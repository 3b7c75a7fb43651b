"""Which model answers an ``/invocations`` request: the one model served, or a model of the
catalog by name."""
from __future__ import annotations

from flask import Flask, current_app, request

from .catalog.catalog import ModelCatalog
from .decoding import RequestBody
from .errors import BAD_REQUEST, TEMPORARILY_UNAVAILABLE, ScoringError
from .pipeline import Scorer
from .security import READ, caller_has_scope

MODEL_HEADER = "X-Model-Name"


def select_scorer(body: RequestBody) -> Scorer:
    """The served model, or (serving many) the model named by the ``X-Model-Name`` header, else by
    the ``params`` entry ``model_param`` of a JSON body, else the default model."""
    catalog = current_catalog()
    if catalog is None:
        scorer = current_app.extensions["model_slot"].scorer
        if scorer is None:
            raise ScoringError("The model is not loaded yet.", TEMPORARILY_UNAVAILABLE, status=503)
        return scorer
    config = current_app.config["SCORING_SERVER"]
    name = request.headers.get(MODEL_HEADER) or _name_from_params(body, config.model_param) or config.default_model
    if not name:
        listing = f" Models: {catalog.names()}" if caller_has_scope(READ) else ""
        raise ScoringError(
            f"This server serves several models: name one with the {MODEL_HEADER} header, with "
            f"\"params\": {{\"{config.model_param}\": NAME}}, or POST to /models/NAME/invocations.{listing}",
            BAD_REQUEST)
    return catalog.scorer(name)


def served_scorers(app: Flask) -> list[Scorer]:
    """The scorers ``app`` holds in this process now: its one model's, or its catalog's loaded ones."""
    catalog, slot = app.extensions.get("model_catalog"), app.extensions.get("model_slot")
    if catalog is not None:
        return catalog.loaded_scorers()
    return [slot.scorer] if slot is not None and slot.scorer is not None else []


def current_catalog() -> ModelCatalog | None:
    """The app's model catalog when it serves several models."""
    return current_app.extensions.get("model_catalog")


def _name_from_params(body: RequestBody, param: str) -> str | None:
    """The model named in a JSON body's ``params``; the body is parsed here once and reused by decoding."""
    if (request.mimetype or "") != "application/json":
        return None
    try:
        payload = body.json()
    except ScoringError:
        return None  # decoding will answer the error
    params = payload.get("params") if isinstance(payload, dict) else None
    name = params.get(param) if isinstance(params, dict) else None
    return name if isinstance(name, str) else None
