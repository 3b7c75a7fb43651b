"""Requests answered on the worker's event loop, each in a greenlet, their predictions batched.

With one thread per worker (the default), a request read whole by the event loop is answered
right there, in a greenlet of the loop's own thread: no hand-off to a thread, no lock, no wake-up.
A request whose model batches (:class:`~scoring_server.batching.AdaptiveBatcher`) parks its
greenlet when it reaches ``predict``; once every request the loop read in this turn has been
decoded and parked, :meth:`RequestGreenlets.flush` predicts them together in one call and resumes
each greenlet to encode and send its own answer. The batch is what arrived while the previous one
was predicted: it grows with the load and is one request when there is no concurrency, without
waiting for anything.

A greenlet never blocks the loop on a client: its answer goes out through a socket whose
``sendall`` parks the greenlet until the client reads (within ``body_timeout``).
"""
from __future__ import annotations

import selectors
import ssl
import time
from collections.abc import Callable
from typing import Any

import greenlet

from .base import RequestState, current_request

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class RequestGreenlets:
    """The request greenlets of one worker's event loop (the hub), and the batches they wait for."""

    def __init__(self, poller: selectors.BaseSelector, send_timeout: float) -> None:
        self.hub = greenlet.getcurrent()
        self.poller = poller
        self.send_timeout = send_timeout
        #: The requests whose code runs now (one greenlet, or a batch being predicted), for the deadline watch.
        self.running: tuple[RequestState, ...] = ()
        self._parked: dict[Any, list[tuple[Any, greenlet.greenlet, RequestState | None]]] = {}
        self._writing: dict[greenlet.greenlet, float] = {}  # greenlets waiting for a client to read, until when

    def start(self, answer: Callable[[Any], None], conn: Any, state: RequestState) -> None:
        """Run ``answer(conn)`` in a new greenlet until it is done or parks."""
        self._run(greenlet.greenlet(answer, parent=self.hub), state, conn)

    def _run(self, request: greenlet.greenlet, state: RequestState | None, *args: Any) -> None:
        self.running = (state,) if state is not None else ()
        try:
            request.switch(*args)
        finally:
            self.running = ()

    # --- batches ---------------------------------------------------------------------------------

    def park(self, batcher: Any, pending: Any) -> None:
        """In a request greenlet: wait for ``batcher`` to predict ``pending`` with the others."""
        self._parked.setdefault(batcher, []).append((pending, greenlet.getcurrent(), current_request()))
        self.hub.switch()

    def flush(self, abandoned: Callable[[], BaseException]) -> None:
        """Predict what the parked requests wait for, batcher by batcher, and resume each of them.
        ``abandoned()``: the error of requests whose batch was interrupted at a deadline."""
        while self._parked:
            parked, self._parked = self._parked, {}
            for batcher, waiting in parked.items():
                self.running = tuple(state for _, _, state in waiting if state is not None)
                try:
                    batcher.predict_pending([pending for pending, _, _ in waiting])
                except BaseException:  # noqa: BLE001 - interrupted at a deadline (RequestAbandoned)
                    for pending, _, _ in waiting:
                        if not pending.finished:
                            pending.finish(error=abandoned())
                finally:
                    self.running = ()
                for _, request, state in waiting:
                    self._run(request, state)

    # --- answers to clients that read slowly ----------------------------------------------------

    def sendall(self, sock: Any, data: bytes) -> None:
        """``sock.sendall`` for a non-blocking ``sock`` from a request greenlet: parks it while the
        client does not read, at most ``send_timeout`` seconds (then :class:`TimeoutError`)."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
            except _WOULD_BLOCK:
                self._wait_writable(sock)

    def _wait_writable(self, sock: Any) -> None:
        request = greenlet.getcurrent()
        self._writing[request] = time.monotonic() + self.send_timeout
        self.poller.register(sock, selectors.EVENT_WRITE, lambda _sock: self._resume_writer(request, None))
        try:
            error = self.hub.switch()
        finally:
            self._writing.pop(request, None)
            self.poller.unregister(sock)
        if error is not None:
            raise error

    def _resume_writer(self, request: greenlet.greenlet, error: BaseException | None) -> None:
        self._run(request, current_request_of(request), error)

    def expire_writers(self, now: float) -> None:
        """Give up on answers whose client has not read for ``send_timeout`` seconds."""
        for request, until in list(self._writing.items()):
            if now >= until:
                self._resume_writer(request, TimeoutError("the client did not read the answer in time"))


def current_request_of(request: greenlet.greenlet) -> RequestState | None:
    """The request a parked greenlet answers (its own context's)."""
    context = request.gr_context
    return context.run(current_request) if context is not None else None


class CooperativeSocket:
    """A client socket as a request greenlet uses it: non-blocking, its ``sendall`` parking the
    greenlet instead of blocking the loop; everything else is the socket's own."""

    def __init__(self, sock: Any, greenlets: RequestGreenlets) -> None:
        self._sock = sock
        self._greenlets = greenlets

    def sendall(self, data: bytes) -> None:
        self._greenlets.sendall(self._sock, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
