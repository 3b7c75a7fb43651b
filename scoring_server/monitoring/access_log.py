"""The access log: one line per answered request on stderr, as JSON or as ``key=value`` text.

It is written by the gunicorn worker, where the truth is known: gunicorn calls its logger's
``access(resp, req, environ, request_time)`` once a response is sent, with the real status and
the bytes sent, and our workers do the same for the answers they make without the app (a
malformed request, a request past its deadline). What only the app knows comes through the WSGI
environ: the request's ID (:mod:`.request_ids`) and, for a scoring request, the model, version
and rows of its :class:`~.events.ScoringEvent`. A request answered in-process (Flask's test
client) has no access-log line: there is no worker.

Header values and bodies are never logged (no ``Authorization``, no ``X-API-Key``), nor the query
string. Each line is one ``write`` of the whole line to file descriptor 2, so that the lines of
several workers sharing stderr never interleave.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import orjson
from flask import Flask, has_request_context, request
from gunicorn.glogging import Logger

from ..config import ServerConfig
from . import request_ids
from .events import Event, ScoringEvent

#: The WSGI environ key of a scoring request's ``(model, version, rows)``.
SCORED = "scoring_server.scored"
_UNSCORED = (None, None, None)
#: A longer path is cut, so that a line stays one atomic write to a pipe (PIPE_BUF is 4096 bytes).
PATH_MAX = 1024
_CONTAINER_FILES = ("/.dockerenv", "/run/.containerenv")
_CONTAINER_VARIABLES = ("KUBERNETES_SERVICE_HOST", "container")


def resolved_mode(setting: str) -> str:
    """``json``, ``text`` or ``off`` for the ``access_log`` setting (``auto``: json in a container)."""
    if setting != "auto":
        return setting
    return "json" if in_container() else "text"


def in_container(environ: Mapping[str, str] = os.environ,
                 exists: Callable[[str], bool] = os.path.exists) -> bool:
    """Whether this process seems to run in a container (Docker, Podman, Kubernetes, systemd-nspawn)."""
    return any(variable in environ for variable in _CONTAINER_VARIABLES) or any(map(exists, _CONTAINER_FILES))


def install_access_log(app: Flask, config: ServerConfig) -> None:
    """Give every request of ``app`` its ID (always) and, with the access log on, pass each scoring
    request's model, version and rows to the worker that writes its line."""
    request_ids.install(app)
    if resolved_mode(config.access_log) != "off":
        app.extensions["observers"].add(_remember_scoring)


def logger_class(setting: str) -> type[Logger]:
    """The gunicorn ``logger_class`` writing the access log ``setting`` asks for (when off,
    gunicorn's own, which skips every access at no cost: its ``accesslog`` is not set)."""
    return {"json": JsonAccessLogger, "text": TextAccessLogger}.get(resolved_mode(setting), Logger)


def _remember_scoring(event: Event) -> None:
    if type(event) is ScoringEvent and has_request_context():
        request.environ[SCORED] = (event.model, event.version, event.rows)


def access_record(resp: Any, environ: dict[str, Any], request_time: timedelta | None) -> dict[str, Any]:
    """The fields of one line, from gunicorn's response (``status_code``, ``sent``) and the WSGI
    environ; None where a value is unknown."""
    model, version, rows = environ.get(SCORED, _UNSCORED)
    uri = environ.get("RAW_URI")
    return {
        "time": utc_now(),
        "request_id": environ.get(request_ids.ENVIRON_KEY),
        "method": environ.get("REQUEST_METHOD"),
        "path": uri.partition("?")[0][:PATH_MAX] if uri else None,
        "status": getattr(resp, "status_code", None),
        "duration_ms": round(request_time.total_seconds() * 1000, 3) if request_time is not None else None,
        "model": model,
        "version": version,
        "rows": rows,
        "bytes_in": _bytes_in(environ),
        "bytes_out": resp.sent,
        "client": environ.get("REMOTE_ADDR"),
    }


def _bytes_in(environ: dict[str, Any]) -> int | None:
    """The body's declared length; None for a chunked body (its length is not known here) and
    for a request whose head was not read."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return int(length) if length.isdigit() else None
    return None if "HTTP_TRANSFER_ENCODING" in environ or environ.get("REQUEST_METHOD") is None else 0


_second = (0, "")


def utc_now() -> str:
    """ISO 8601 UTC time with milliseconds (``2024-05-01T12:00:00.123Z``); the part up to the
    second is formatted once a second."""
    global _second
    now = time.time()
    second = int(now)
    formatted = _second
    if formatted[0] != second:
        formatted = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{formatted[1]}.{int((now - second) * 1000):03d}Z"


def json_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


_bare = re.compile(r'[!#-\[\]-~]+').fullmatch  # printable ASCII but space, '"' and '\'


def text_line(record: dict[str, Any]) -> bytes:
    """``key=value`` pairs: ``-`` for unknown, strings quoted and escaped as JSON unless they are
    printable ASCII without space, quote or backslash (no value can forge a line)."""
    return (" ".join([f"{key}={_text(value)}" for key, value in record.items()]) + "\n").encode()


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if type(value) is str and not _bare(value):
        return orjson.dumps(value).decode()
    return str(value)


class AccessLogger(Logger):
    """gunicorn's logger, with our access-log line instead of its Apache-style one (gunicorn's
    ``accesslog`` and ``access_log_format`` settings do not apply); ``render`` makes the line."""

    render: Callable[[dict[str, Any]], bytes]

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta | None) -> None:
        """Write the line of one answered request (``request_time`` None when its start is unknown)."""
        try:
            write_line(self.render(access_record(resp, environ, request_time)))
        except Exception:  # noqa: BLE001 - the access log must never fail an answer
            self.debug("Failed to write an access-log line.", exc_info=True)


class JsonAccessLogger(AccessLogger):
    """One JSON object per line."""

    render = staticmethod(json_line)


class TextAccessLogger(AccessLogger):
    """``key=value`` pairs, one line per request."""

    render = staticmethod(text_line)


def write_line(line: bytes) -> None:
    """Write ``line`` to stderr in one ``write`` (a partial write is finished)."""
    while line:
        line = line[os.write(2, line):]
