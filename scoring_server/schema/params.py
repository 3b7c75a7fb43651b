"""Inference params: defaults, safe conversion, and what to do with params nobody declared."""
from __future__ import annotations

import logging
from typing import Any

from flavors.base import PREDICT_METHOD
from flavors.signature import ParamSchema, ParamSpec

from ..errors import invalid_parameter
from .values import ConversionError, convert_scalar

_logger = logging.getLogger(__name__)


def enforce_params_and_method(params: Any, schema: ParamSchema | None, offered: tuple[str, ...]) -> dict | None:
    """:func:`enforce_params`, keeping the ``predict_method`` a request chose among the model's
    ``offered`` methods (for :meth:`flavors.LoadedModel.predict`).

    A signature that declares a ``predict_method`` param makes it the model's own, enforced like any
    other. Otherwise a method the model does not offer is refused, where MLflow would ignore the
    param and answer with the saved method: the client asked for something else."""
    if not isinstance(params, dict) or PREDICT_METHOD not in params or (
            schema is not None and PREDICT_METHOD in schema.names()):
        return enforce_params(params, schema)
    method = params[PREDICT_METHOD]
    if method not in offered:
        choice = f"one of {', '.join(offered)}" if offered else "left out: this model offers no other method"
        raise invalid_parameter(f"'{PREDICT_METHOD}' {method!r} is not a method of this model; it must be {choice}.")
    enforced = enforce_params({name: value for name, value in params.items() if name != PREDICT_METHOD}, schema)
    return {**(enforced or {}), PREDICT_METHOD: method}


def enforce_params(params: Any, schema: ParamSchema | None) -> dict | None:
    """Validated params with defaults filled in; ``None`` when the model declares none.

    Params the schema does not declare are ignored with a log line, as MLflow does.
    """
    if schema is None:
        if params:
            _logger.info("Ignoring params %s: the model's signature declares no params.", _names(params))
        return None
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid_parameter(f"'params' must be a JSON object of name to value, got {type(params).__name__}.")
    unknown = sorted(set(params) - set(schema.names()))
    if unknown:
        _logger.info("Ignoring params %s: not declared in the model's signature.", unknown)
    errors: dict[str, str] = {}
    result = {}
    for spec in schema.params:
        try:
            result[spec.name] = _param_value(params[spec.name], spec) if spec.name in params else spec.default
        except ConversionError as exc:
            errors[spec.name] = f"Failed to validate type and shape for '{spec.name}', error: {exc}"
    if errors:
        raise invalid_parameter(f"Invalid parameters found: {errors!r}")
    return result


def _param_value(value: Any, spec: ParamSpec) -> Any:
    if value is None:
        return None
    if spec.shape is None:
        return convert_scalar(value, spec.type.name)
    if not isinstance(value, list):
        raise ConversionError(f"expected a list for a param of shape {list(spec.shape)}, got {type(value).__name__}")
    return [convert_scalar(item, spec.type.name) for item in value]


def _names(params: Any) -> Any:
    return sorted(params) if isinstance(params, dict) else type(params).__name__
