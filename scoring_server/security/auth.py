"""The one check of who may call what: a ``before_request`` of the app, driven by one table.

:data:`ENDPOINT_SCOPES` maps every Flask endpoint to the scope a caller's key must hold, or to
:data:`OPEN`. With API keys configured (``api_keys_file``):

* an endpoint missing from the table is refused to every caller (403, logged as a bug): a route
  added without deciding who may call it is closed, not open;
* a path that matches no route (404, or 405 for a wrong method) needs a valid key of any scope,
  so that callers without one cannot tell which routes exist;
* an authenticated caller's scopes are in ``flask.g.caller_scopes`` (a frozenset) and its key's
  name in ``flask.g.caller_name``, for routes that ask :func:`scoring_server.security.caller_has_scope`;
  on an open route a caller without a valid key has the empty set (it may do nothing more).

Without API keys nothing is installed: every caller may do everything, ``g.caller_scopes`` is
unset. Routes never look at keys themselves.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from .. import errors
from ..config import ServerConfig
from ..error_handlers import error_response
from ..errors import ScoringError
from . import ADMIN, READ, SCORE
from .keys import KeysError, KeyStore

_logger = logging.getLogger(__name__)

#: No key needed.
OPEN = "open"
#: Flask endpoint → the scope its callers need. Add every new route here (``/metrics``,
#: ``/monitoring`` and ``/openapi.json`` of the scoring port are READ); one missing is refused.
ENDPOINT_SCOPES: dict[str, str] = {
    "health.ping": OPEN,  # GET/HEAD /ping (readiness): load balancers and orchestrators probe it
    "health.health": OPEN,  # GET/HEAD /health (liveness): orchestrators probe it
    "health.version": READ,
    "openapi.spec": READ,  # GET /openapi.json
    "metrics.metrics": READ,  # GET /metrics (of the scoring port, or of --metrics-port)
    "monitoring.summary": READ,  # GET /monitoring (beside /metrics)
    "scoring.invocations": SCORE,
    "models.model_invocations": SCORE,
    "models.list_models": READ,
    "models.describe_model": READ,
    "models.add_model": ADMIN,
    "models.remove_model": ADMIN,
}
#: What a path that matches no route needs: any valid key.
_ANY_KEY = "any valid key"
_UNMAPPED = "no scope"
_NO_SCOPES: frozenset[str] = frozenset()
REALM = 'Bearer realm="scoring-server"'
_HOW = "send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


def install(app: Flask, config: ServerConfig) -> None:
    """Check every request's key when ``config.api_keys_file`` is set.

    Raises :class:`KeysError` (the server must not start) when the keys file cannot be used, or
    when the admin API is enabled without keys. Install CORS first: a listed origin's preflight is
    answered before (and without) this check.
    """
    if not config.api_keys_file:
        if config.admin_api:
            raise KeysError("the admin API (--admin-api) adds and removes models, so it needs API keys: give "
                            "--api-keys FILE (create one with `scoring-server keys create --scope admin "
                            "--name NAME --file FILE`; docs/security.md)")
        return
    store = KeyStore(config.api_keys_file)
    app.extensions["api_keys"] = store
    _logger.info("API keys required (%d keys in %s)", len(store.keys), store.path)
    app.before_request(_checker(store))


def _checker(store: KeyStore):
    authenticate = store.authenticate
    scopes_of = ENDPOINT_SCOPES.get

    def check_caller() -> Response | None:
        # The request and g objects are taken once: every access through their proxies costs time.
        req = request._get_current_object()
        rule = req.url_rule
        needed = _ANY_KEY if rule is None else scopes_of(rule.endpoint, _UNMAPPED)
        presented = _presented_key(req.environ)
        if needed == OPEN:  # never refused; a valid key still tells the route what its caller may do
            key = authenticate(presented) if presented else None
            caller = g._get_current_object()
            caller.caller_scopes = key.scopes if key is not None else _NO_SCOPES
            if key is not None:
                caller.caller_name = key.name
            return None
        if presented is None:
            return _unauthenticated("no key", f"An API key is required: {_HOW}.")
        key = authenticate(presented) if presented else None
        if key is None:
            return _unauthenticated("unknown key", "The API key is not valid.")
        caller = g._get_current_object()
        caller.caller_scopes = key.scopes
        caller.caller_name = key.name
        if needed in key.scopes or needed == _ANY_KEY:
            return None
        if needed == _UNMAPPED:
            _logger.error("Refused %s %r: endpoint %r has no entry in security.auth.ENDPOINT_SCOPES",
                          req.method, req.path, rule.endpoint)
            return _refused(key.name, "no scope is allowed", "This route is not open to any API key.")
        return _refused(key.name, f"lacks scope {needed!r}",
                        f"This API key may not do this: it needs the {needed!r} scope.")

    return check_caller


def _presented_key(environ: dict) -> str | None:
    """The key of ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; "" for a malformed or
    conflicting one (refused as not valid), None when there is none. Never the query string."""
    header = environ.get("HTTP_AUTHORIZATION")
    bearer = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            bearer = value.strip()
    api_key = environ.get("HTTP_X_API_KEY")
    if api_key is not None:
        api_key = api_key.strip()
        if bearer is not None and bearer != api_key:
            return ""  # two different keys: neither is trusted
        return api_key
    if bearer is None and header is not None:
        return ""  # another scheme (Basic, ...) in Authorization: a credential, but not one of ours
    return bearer


def _unauthenticated(reason: str, message: str) -> Response:
    _logger.warning("401 %s %r: %s", request.method, request.path, reason)
    response = error_response(ScoringError(message, errors.UNAUTHENTICATED, status=401))
    response.headers["WWW-Authenticate"] = REALM
    return response


def _refused(name: str, reason: str, message: str) -> Response:
    _logger.warning("403 %s %r: key %r %s", request.method, request.path, name, reason)
    return error_response(ScoringError(message, errors.PERMISSION_DENIED, status=403))
