"""What both worker classes share: their settings, JSON errors instead of gunicorn's HTML pages,
and the claim that decides who answers a request: the app (its response) or the worker (a JSON
504 at the deadline), never both."""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..monitoring import request_ids
from . import context, http_errors

_logger = logging.getLogger(__name__)

#: How much later than the app the worker answers a request at its deadline: the app's own
#: answer (from the batcher, or before predicting) is observed as a scoring event, so it goes first.
DEADLINE_SLACK = 0.05


class RequestAbandoned(BaseException):
    """The request was answered by the worker at its deadline: its thread must not answer too.
    A ``BaseException``, like ``SystemExit``: the model's and the app's error handling let it through."""


@dataclass(frozen=True)
class WorkerSettings:
    """The scoring server's settings a worker needs (from the app's configuration)."""

    request_timeout: float
    header_timeout: float
    body_timeout: float
    max_body: int

    @classmethod
    def of(cls, app: Any) -> WorkerSettings:
        """From the Flask app's ``SCORING_SERVER`` configuration, or the defaults for another app."""
        config = getattr(app, "config", {}).get("SCORING_SERVER") if hasattr(app, "config") else None
        if config is None:
            from ..config import default_values

            values = default_values()
            return cls(values["request_timeout"], values["header_timeout"], values["body_timeout"],
                       values["max_request_bytes"])
        return cls(config.request_timeout, config.header_timeout, config.body_timeout, config.max_request_bytes)


_claims = threading.Lock()


class RequestState:
    """One request handed to the app: queued, running, answered by the app (``RESPONDING``) or
    by the worker at its deadline (``ABANDONED``)."""

    QUEUED, RUNNING, RESPONDING, ABANDONED = range(4)
    __slots__ = ("close_after", "deadline", "dispatched", "done", "environ", "status")

    def __init__(self, dispatched: float, deadline: float) -> None:
        self.dispatched, self.deadline = dispatched, deadline
        self.status = self.QUEUED
        self.done = False
        self.close_after = False  # answer with Connection: close
        self.environ: dict[str, Any] | None = None  # the app's WSGI environ, once the app has it

    def start(self) -> bool:
        """A thread takes the request; False if the worker already answered it."""
        with _claims:
            if self.status == self.QUEUED:
                self.status = self.RUNNING
                return True
            return False

    def claim_response(self) -> bool:
        """The app is about to answer; False if the worker already did."""
        with _claims:
            if self.status <= self.RUNNING:
                self.status = self.RESPONDING
                return True
            return self.status == self.RESPONDING

    def abandon(self) -> bool:
        """The worker answers it (deadline, or the worker stops); False if the app already does."""
        with _claims:
            if self.status <= self.RUNNING:
                self.status = self.ABANDONED
                return True
            return False

    @property
    def abandoned(self) -> bool:
        return self.status == self.ABANDONED

    @property
    def stuck(self) -> bool:
        """Answered at its deadline while a thread still runs it."""
        return self.status == self.ABANDONED and not self.done


# The request being answered where this code runs: a thread of the worker, or a greenlet of its loop.
_current: ContextVar[RequestState | None] = ContextVar("worker_request", default=None)


def current_request() -> RequestState | None:
    """The state of the request the calling thread (or greenlet) answers."""
    return _current.get()


class ScoringWorkerMixin:
    """JSON errors, the per-request deadline and the claim, for a gunicorn worker class."""

    settings: WorkerSettings
    log: Any
    cfg: Any
    wsgi: Callable

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        self.settings = WorkerSettings.of(self.wsgi)
        self._app = self.wsgi
        self.wsgi = _ClaimingApp(self)

    def _answer_with_claim(self, environ: dict, start_response: Callable) -> Any:
        """The app, whose response goes out only if the worker did not answer at the deadline."""
        http_errors.check_host(environ)  # answered as the parser's errors are
        state = current_request()
        state.environ = environ  # the request's ID, once the app gives it, for the worker's own answer

        def claiming_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            if not state.claim_response():
                raise RequestAbandoned()
            if state.close_after:
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)

        return self._app(environ, claiming_start_response)

    def run_request(self, state: RequestState) -> None:
        """Called where ``state``'s request runs (its thread or greenlet), before it is read."""
        _current.set(state)
        context.set_request_deadline(state.deadline)

    def request_done(self, state: RequestState) -> None:
        state.done = True
        state.environ = None  # not kept (with the request's body) while its connection waits for the next one
        context.set_request_deadline(None)

    def deadline_answer(self, state: RequestState, client: Any) -> bytes:
        """The JSON 504 of a request past its deadline (``client``: its address), logged."""
        error = context.deadline_exceeded(self.settings.request_timeout)
        environ = request_environ(state.environ, None, client)
        answer = self.worker_answer(error.status, error.error_code, error.message, environ, state.dispatched)
        self.log.warning("Request from %s not answered within %g s (request_timeout): answered 504 (request_id=%s)",
                         environ["REMOTE_ADDR"], self.settings.request_timeout, environ[request_ids.ENVIRON_KEY])
        return answer

    def worker_answer(self, status: int, error_code: str, message: str, environ: dict[str, Any],
                      started: float | None) -> bytes:
        """A JSON error the worker answers itself, without the app: it carries the request's ID (the
        app's if it gave one, else the client's if well-formed, else a new one, then set in
        ``environ``) and is the request's access-log line (``started``: when the request began, by
        ``time.monotonic()``; None if unknown)."""
        request_id = environ[request_ids.ENVIRON_KEY] = request_ids.request_id_of(environ)
        answer, body_length = http_errors.json_response(status, error_code, message, request_id)
        took = timedelta(seconds=time.monotonic() - started) if started is not None else None
        try:
            self.log.access(WorkerAnswer(status, body_length), None, environ, took)
        except Exception:  # the access log must not stop the answer
            self.log.debug("Failed to log the access of an error answer.", exc_info=True)
        return answer

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """gunicorn's error page, as MLflow-style JSON: ``{"error_code": ..., "message": ...,
        "request_id": ...}``."""
        if isinstance(exc, RequestAbandoned):
            return  # answered at its deadline
        state = current_request()
        if state is not None and not state.claim_response():
            return
        addr = addr or ("", -1)
        req = req if req is not None else getattr(exc, "req", None)
        environ = request_environ(state.environ if state is not None else None, req, addr)
        status, error_code, message = http_errors.describe(exc)
        answer = self.worker_answer(status, error_code, message, environ, state.dispatched if state is not None else None)
        request_id = environ[request_ids.ENVIRON_KEY]
        if status < 500:
            self.log.warning("Invalid request from ip=%s (request_id=%s): %s", addr[0], request_id, exc)
        elif req is not None and hasattr(req, "uri"):
            self.log.exception("Error handling request %s %s (request_id=%s)", getattr(req, "method", ""), req.uri,
                               request_id)
        else:
            self.log.exception("Error handling request (no URI read; request_id=%s)", request_id)
        try:
            client.settimeout(2.0)
            client.sendall(answer)
        except (OSError, ValueError):
            self.log.debug("Failed to send error message.")


@dataclass(frozen=True)
class WorkerAnswer:
    """A worker's own answer, as a gunicorn access logger reads a response (``sent``: body bytes)."""

    status_code: int
    sent: int


def request_environ(app_environ: dict[str, Any] | None, req: Any, client: Any) -> dict[str, Any]:
    """The WSGI environ the access log reads for a worker's own answer: the app's when the app had
    the request, else what the worker knows (the client's address; the method, URI, body length
    and ``X-Request-ID`` of a head it could parse)."""
    if app_environ is not None:
        return app_environ
    environ: dict[str, Any] = {"REMOTE_ADDR": client[0] if isinstance(client, tuple) else str(client)}
    if req is not None:
        environ["REQUEST_METHOD"], environ["RAW_URI"] = getattr(req, "method", None), getattr(req, "uri", None)
        for name, value in getattr(req, "headers", ()):
            if name in _HEADERS_READ:
                environ[_HEADERS_READ[name]] = value
    return environ


#: The request header fields a worker's own answer reads (the ID, the body's length), and their
#: WSGI environ keys.
_HEADERS_READ = {"X-REQUEST-ID": "HTTP_X_REQUEST_ID", "CONTENT-LENGTH": "CONTENT_LENGTH",
                 "TRANSFER-ENCODING": "HTTP_TRANSFER_ENCODING"}


class _ClaimingApp:
    """The worker's WSGI app: the app itself (its attributes too, for hooks such as
    ``post_worker_init``), called through the worker's claim."""

    def __init__(self, worker: ScoringWorkerMixin) -> None:
        self._worker = worker

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self._worker._answer_with_claim(environ, start_response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._worker._app, name)
