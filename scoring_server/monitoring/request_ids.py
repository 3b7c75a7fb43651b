"""Request IDs: every request has one, so a client quoting it lets an operator find its log lines,
its access-log line and its captured payload.

A client's ``X-Request-ID`` is kept when it is well-formed: 1 to 128 characters among ``A-Z a-z
0-9 . _ : -``. An ID ends up in response headers and log lines, so any other value (spaces, CR or
LF, quotes, non-ASCII, too long) is replaced by a new ID, never echoed. The app sets it before any
other check (a refused request has one too) in ``flask.g.request_id`` and in the WSGI environ
(:data:`ENVIRON_KEY`, read by the worker's access log), and answers it in the ``X-Request-ID``
header; the worker's own answers carry one as well (:mod:`scoring_server.workers.base`).
"""
from __future__ import annotations

import logging
import os
import random
import re
from typing import Any

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
#: The WSGI environ key of the request's ID, for the worker serving it.
ENVIRON_KEY = "scoring_server.request_id"
_CLIENT_ID = "HTTP_X_REQUEST_ID"
_well_formed = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch


_random = random.Random()  # not the module's: a model calling random.seed() must not repeat our IDs
os.register_at_fork(after_in_child=_random.seed)  # else every worker would make the same IDs


def new_request_id() -> str:
    """32 random hexadecimal digits: a UUID4's worth of randomness, without a system call. IDs name
    requests; they grant nothing, so they need not be unpredictable."""
    return _random.getrandbits(128).to_bytes(16, "big").hex()


def accepted_request_id(sent: str | None) -> str:
    """The client's ID if it is well-formed, else a new one."""
    return sent if sent is not None and _well_formed(sent) else new_request_id()


def request_id_of(environ: dict[str, Any]) -> str:
    """The ID of the request of ``environ``: the app's if it gave one, else the client's if
    well-formed, else a new one (for the answers a worker makes without the app)."""
    return environ.get(ENVIRON_KEY) or accepted_request_id(environ.get(_CLIENT_ID))


def current_request_id() -> str | None:
    """The ID of the request being handled on this thread; None outside a request."""
    return g.get("request_id") if has_request_context() else None


def install(app: Flask) -> None:
    """Give every request of ``app`` its ID before any other ``before_request`` hook runs, and
    answer it in every response's ``X-Request-ID`` header."""
    app.before_request_funcs.setdefault(None, []).insert(0, _identify_request)
    app.after_request(_answer_request_id)


def _identify_request() -> None:
    environ = request.environ
    g.request_id = environ[ENVIRON_KEY] = accepted_request_id(environ.get(_CLIENT_ID))


def _answer_request_id(response: Response) -> Response:
    response.headers.add(HEADER, g.request_id)  # set by the first before_request hook, which always runs
    return response


class RequestIdFormatter(logging.Formatter):
    """A log formatter that ends the message of a record made while handling a request with
    `` [request_id=ID]`` (before any traceback): everything a request logs can be found by its ID.
    Records of other threads (the batching thread, the worker's event loop) are left as they are."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        request_id = current_request_id()
        return f"{line} [request_id={request_id}]" if request_id is not None else line
