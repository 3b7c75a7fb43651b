"""CORS for browser clients of listed origins (``cors_origins``); off when the list is empty.

* A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed ``Origin`` is
  answered 204 with the allowed methods, request headers and max age, for any path and without a
  key: browsers never send credentials on a preflight, and the answer is the same for every path,
  so it tells nothing about which routes exist.
* Every other answer to a listed origin (errors included) carries ``Access-Control-Allow-Origin``
  with that origin and the response headers a browser client may read.
* Unlisted origins get no CORS headers, so browsers keep their pages from reading the answers.
* With CORS on, every answer carries ``Vary: Origin`` (it depends on the Origin header).

No ``Access-Control-Allow-Credentials``: keys are sent explicitly (``Authorization`` or
``X-API-Key``), not as cookies or browser-managed credentials.
"""
from __future__ import annotations

from flask import Flask, Response, request

from ..config import ServerConfig

ALLOW_METHODS = "GET, HEAD, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type, X-Model-Name, X-Request-ID"
EXPOSE_HEADERS = "X-Model-Name, X-Model-Version, X-Request-ID"
MAX_AGE_SECONDS = 600


def install(app: Flask, config: ServerConfig) -> None:
    """Answer listed origins' preflights and mark their answers; install before the key check."""
    origins = frozenset(config.cors_origins or ())
    if not origins:
        return

    def preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = request.headers.get("Origin")
        if origin not in origins:
            return None
        response = app.response_class(status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
        return response

    def allow_origin(response: Response) -> Response:
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin in origins and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response

    app.before_request(preflight)
    app.after_request(allow_origin)
