"""``/invocations/`` → ``/invocations``: a path with trailing slashes that only misses a route by
them is redirected (307, so the method and body are kept) to that route, as MLflow 3.x answers."""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

blueprint = Blueprint("slashes", __name__)


@blueprint.before_app_request
def redirect_trailing_slash() -> Response | None:
    """A 307 to the path without its trailing slashes, when that path is a route (for any method);
    None (the request goes on, to its 404) otherwise."""
    path = request.path
    if not isinstance(request.routing_exception, NotFound) or not path.endswith("/"):
        return None
    target = path.rstrip("/")
    if not target or not _is_route(target):
        return None
    location = request.root_url.rstrip("/") + quote(target)
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    response = Response(status=307, headers={"Location": location})
    del response.headers["Content-Type"]  # an empty body, as MLflow's
    return response


def _is_route(path: str) -> bool:
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        adapter.match(path, method=request.method)
    except MethodNotAllowed:
        return True
    except HTTPException:  # no route there either
        return False
    return True
