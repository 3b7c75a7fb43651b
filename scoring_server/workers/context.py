"""What the app may ask the worker serving it: the current request's deadline, and whether the
server is stopping. No gunicorn import: the app runs without a worker too (tests, batch commands),
and then there is no deadline and the server never stops.
"""
from __future__ import annotations

import mmap
import threading

from ..errors import ScoringError

#: The error code of a request answered at its deadline (MLflow's, HTTP 504).
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"

_local = threading.local()
# One shared page, made by each gunicorn master before it forks its workers (share_stop_flag):
# the master sets it when the whole server stops (SIGTERM), and every worker reads it. A worker
# that is only being replaced (HUP, TTOU, max_requests) is not the server stopping: its /ping
# keeps answering 200. Outside a server, a flag of this process only.
_stopping: bytearray | mmap.mmap = bytearray(1)


def request_deadline() -> float | None:
    """The ``time.monotonic()`` by which the current request must be answered, or None."""
    return getattr(_local, "deadline", None)


def set_request_deadline(deadline: float | None) -> None:
    """Set by the worker on the thread that runs the request (None when it is done)."""
    _local.deadline = deadline


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
