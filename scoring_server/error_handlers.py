"""Turning exceptions into JSON error responses, in one place for the whole app."""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from . import errors
from .errors import ModelError, ScoringError
from .monitoring.request_ids import current_request_id

_logger = logging.getLogger(__name__)

_HTTP_ERROR_CODES = {404: errors.ENDPOINT_NOT_FOUND}


def register_error_handlers(app: Flask) -> None:
    """Every error, including 404/405/413 and our own bugs, is answered as JSON."""
    app.register_error_handler(ModelError, _model_error)
    app.register_error_handler(ScoringError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def error_response(error: ScoringError) -> Response:
    """The JSON response for a :class:`ScoringError`, with the request's ID, and its stack trace
    only if configured."""
    include_trace = current_app.config["SCORING_SERVER"].expose_stack_traces
    return current_app.response_class(current_app.json.dumps(error.to_dict(include_trace, current_request_id())),
                                      status=error.status, mimetype="application/json")


def _model_error(error: ModelError) -> Response:
    """Logged here, on the request's thread (its ID is on the line), with the model's traceback."""
    cause = error.__cause__
    _logger.warning("The model raised %s: %s", type(cause).__name__, cause, exc_info=cause)
    return error_response(error)


def _http_error(error: HTTPException) -> Response:
    code = _HTTP_ERROR_CODES.get(error.code or 500, errors.BAD_REQUEST)
    response = error_response(ScoringError(error.description or error.name, code, status=error.code or 500))
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unexpected_error(error: Exception) -> Response:
    _logger.exception("Unhandled error")
    return error_response(ScoringError("Internal server error.", errors.INTERNAL_ERROR, status=500))
