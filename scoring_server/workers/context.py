"""What the app may ask the worker serving it: the current request's deadline, the event loop it
runs on (if it runs in one of the loop's greenlets), and whether the server is stopping. No gunicorn import: the app runs without a worker too (tests, batch commands),
and then there is no deadline and the server never stops.
"""
from __future__ import annotations

import mmap
from contextvars import ContextVar
from typing import Any

from ..errors import ScoringError

#: The error code of a request answered at its deadline (MLflow's, HTTP 504).
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"

# Per thread and per greenlet (each has its own context): a worker may run requests in either.
_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)
_batch_loop: ContextVar[Any] = ContextVar("batch_loop", default=None)
# One shared page, made by each gunicorn master before it forks its workers (share_stop_flag):
# the master sets it when the whole server stops (SIGTERM), and every worker reads it. A worker
# that is only being replaced (HUP, TTOU, max_requests) is not the server stopping: its /ping
# keeps answering 200. Outside a server, a flag of this process only.
_stopping: bytearray | mmap.mmap = bytearray(1)


def request_deadline() -> float | None:
    """The ``time.monotonic()`` by which the current request must be answered, or None."""
    return _deadline.get()


def set_request_deadline(deadline: float | None) -> None:
    """Set by the worker where the request runs, its thread or greenlet (None when it is done)."""
    _deadline.set(deadline)


def batch_loop() -> Any:
    """The worker loop the current request runs on, in a greenlet, if it does: a batcher parks the
    request there (``park(batcher, pending)``) instead of handing it to a batching thread."""
    return _batch_loop.get()


def set_batch_loop(loop: Any) -> None:
    """Set by the worker in each request greenlet of its loop."""
    _batch_loop.set(loop)


def deadline_exceeded(seconds: float | None = None) -> ScoringError:
    """The answer to a request still running at its deadline (``request_timeout``)."""
    within = f" within {seconds:g} s" if seconds is not None else " in time"
    return ScoringError(f"The request was not answered{within} (server limit `request_timeout`); it was "
                        "abandoned, and may be retried.", DEADLINE_EXCEEDED, status=504)


def server_stopping() -> bool:
    """Whether the whole server is draining (SIGTERM): /ping answers 503 then."""
    return _stopping[0] == 1


def share_stop_flag() -> None:
    """A new stop flag shared with the processes forked from now on (a gunicorn master's workers)."""
    global _stopping
    _stopping = mmap.mmap(-1, 1)


def mark_server_stopping() -> None:
    """Called in the master when the server is told to stop, before the workers are."""
    _stopping[0] = 1
