"""Errors of the HTTP layer (what gunicorn finds before the app sees a request, and what the
worker itself answers) as MLflow-style JSON, never gunicorn's HTML pages.

Every answer here closes the connection: after a framing error nobody knows where the next request
would start.
"""
from __future__ import annotations

import json
import socket
import ssl
from http import HTTPStatus

from gunicorn.http import errors as http

from .. import errors
from ..monitoring import request_ids


class MissingHost(http.ParseException):
    """An HTTP/1.1 request without ``Host``: RFC 9112 (section 3.2) makes it a 400, as MLflow answers."""

    def __str__(self) -> str:
        return "an HTTP/1.1 request must have a Host header (RFC 9112, section 3.2)"


def check_host(environ: dict) -> None:
    """Raise :class:`MissingHost` for an HTTP/1.1 request without ``Host`` (gunicorn lets it through;
    it refuses two)."""
    if "HTTP_HOST" not in environ and environ.get("SERVER_PROTOCOL") == "HTTP/1.1":
        raise MissingHost()


# The status of each error gunicorn's parser raises; anything else the worker did not foresee is a
# 500 INTERNAL_ERROR (logged with its traceback).
_STATUS = (
    (http.LimitRequestLine, 414),
    (http.LimitRequestHeaders, 431),
    (http.UnsupportedTransferCoding, 501),
    (http.ExpectationFailed, 417),
    (http.ForbiddenProxyRequest, 403),
    (http.ConfigurationProblem, 500),
    ((http.InvalidRequestLine, http.InvalidRequestMethod, http.InvalidHTTPVersion, http.InvalidHeader,
      http.InvalidHeaderName, http.ObsoleteFolding, http.InvalidSchemeHeaders, http.InvalidProxyLine,
      http.InvalidProxyHeader, http.InvalidChunkSize, http.ChunkMissingTerminator, http.InvalidChunkExtension,
      http.InvalidH2CPreface, http.NoMoreData, http.ParseException), 400),
)
_CODES = {400: errors.BAD_REQUEST, 403: "PERMISSION_DENIED", 413: errors.BAD_REQUEST, 414: errors.BAD_REQUEST,
          417: errors.BAD_REQUEST, 431: errors.BAD_REQUEST, 501: "NOT_IMPLEMENTED", 500: errors.INTERNAL_ERROR,
          503: errors.TEMPORARILY_UNAVAILABLE}
_MESSAGE_MAX = 300


def status_of(exc: BaseException) -> int:
    if isinstance(exc, (http.InvalidResponseHeader, http.InvalidResponseHeaderName)):
        return 500  # a header the app tried to send: the server's fault
    for kinds, status in _STATUS:
        if isinstance(exc, kinds):
            return status
    return 500


def describe(exc: BaseException) -> tuple[int, str, str]:
    """``(status, error_code, message)`` for an exception raised while reading or answering a request."""
    status = status_of(exc)
    if status == 500:
        return 500, errors.INTERNAL_ERROR, "Internal server error."
    if isinstance(exc, http.NoMoreData):
        message = "The request ended before it was complete."
    elif isinstance(exc, http.LimitRequestLine):
        message = f"The request line is too long: {exc}."
    elif isinstance(exc, http.LimitRequestHeaders):
        message = f"The request headers are too large: {exc}."
    else:
        message = f"The request could not be read: {exc}."
    if len(message) > _MESSAGE_MAX:
        message = message[:_MESSAGE_MAX - 4] + "...."
    return status, _CODES.get(status, errors.BAD_REQUEST), message


def json_response(status: int, error_code: str, message: str, request_id: str,
                  headers: dict[str, str] | None = None) -> tuple[bytes, int]:
    """A whole HTTP/1.1 response with the JSON error body, the request's ID (a well-formed one: it
    goes into a header) and any further ``headers``, closing the connection; and the length of its body."""
    body = json.dumps({"error_code": error_code, "message": message, "request_id": request_id}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (f"HTTP/1.1 {status} {reason_phrase(status)}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{request_ids.HEADER}: {request_id}\r\n{extra}\r\n")
    return head.encode("latin-1") + body, len(body)


def send_nowait(sock: socket.socket, data: bytes) -> bool:
    """Send ``data`` without ever blocking (the event loop's thread must not wait on a client);
    whether all of it went out. A small answer always fits an empty socket buffer."""
    try:
        if isinstance(sock, ssl.SSLSocket):
            blocking = sock.getblocking()
            sock.setblocking(False)
            try:
                return sock.send(data) == len(data)
            finally:
                sock.setblocking(blocking)
        return sock.send(data, socket.MSG_DONTWAIT) == len(data)
    except (OSError, ValueError):
        return False


def reason_phrase(status: int) -> str:
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
