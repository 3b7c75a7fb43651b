"""``worker_class: sync``: gunicorn's sync worker (one request at a time, in the main thread),
with JSON errors, deadlines and a drain. Only behind a buffering proxy (nginx, see
docs/security.md): a client that sends slowly holds the whole worker while its request is read.

A watch thread keeps the deadlines: the request line and headers must arrive within
``header_timeout`` of the connection (else a JSON 408), and the app must answer within
``request_timeout`` of its start (else a JSON 504). The watch thread sends that answer itself, so
it goes out even while the main thread is inside a long C call, then interrupts the app with
SIGALRM: the worker goes on serving if the app was running Python code. If it was not (a C call
that never returns), gunicorn restarts the worker after ``timeout``, which is kept above
``request_timeout`` for that reason.
"""
from __future__ import annotations

import errno
import signal
import socket
import threading
import time
from typing import Any

from gunicorn.workers import sync

from . import context, http_errors
from .base import (DEADLINE_SLACK, RequestAbandoned, RequestState, ScoringWorkerMixin, current_request,
                   request_environ)
from .thread import DRAIN_SETTLE

_WATCH_INTERVAL = 0.05


class SyncWorker(ScoringWorkerMixin, sync.SyncWorker):
    """gunicorn's sync worker with JSON errors, deadlines kept by a watch thread, and a drain."""

    _watched: tuple[RequestState, socket.socket, Any] | None = None  # the request, its socket and address

    def run(self) -> None:
        self._main_thread = threading.get_ident()
        signal.signal(signal.SIGALRM, self._interrupt)
        threading.Thread(target=self._watch, name="deadline-watch", daemon=True).start()
        super().run()
        if context.server_stopping():
            self._answer_listen_queue()

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        now = time.monotonic()
        state = RequestState(now, now + self.settings.header_timeout)
        state.close_after = True
        self._reading = True
        self.run_request(state)
        context.set_request_deadline(None)  # the app's deadline starts with the app
        self._watched = (state, client, addr)
        try:
            if state.start():
                super().handle(listener, client, addr)
        finally:
            self._watched = None
            self.request_done(state)

    def _answer_with_claim(self, environ: dict, start_response: Any) -> Any:
        state = current_request()
        state.deadline = time.monotonic() + self.settings.request_timeout
        context.set_request_deadline(state.deadline)
        self._reading = False
        return super()._answer_with_claim(environ, start_response)

    def _watch(self) -> None:
        """The watch thread: answer the request in the main thread at its deadline."""
        while self.alive or self._watched is not None:
            watched = self._watched
            if watched is not None:
                state, client, addr = watched
                if time.monotonic() >= state.deadline + DEADLINE_SLACK and state.abandon():
                    reading = self._reading
                    if reading:
                        message = (f"The request line and headers did not arrive within "
                                   f"{self.settings.header_timeout:g} s (server limit `header_timeout`).")
                        answer = self.worker_answer(408, "BAD_REQUEST", message, request_environ(None, None, addr),
                                                    state.dispatched)
                    else:
                        answer = self.deadline_answer(state, addr)
                    http_errors.send_nowait(client, answer)
                    try:
                        client.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    if not reading:
                        signal.pthread_kill(self._main_thread, signal.SIGALRM)
            time.sleep(_WATCH_INTERVAL)

    def _interrupt(self, signum: int, frame: Any) -> None:
        """SIGALRM from the watch thread: stop the app of a request answered at its deadline."""
        watched = self._watched
        if watched is not None and watched[0].abandoned and not self._reading:
            raise RequestAbandoned()

    def _answer_listen_queue(self) -> None:
        """The server stops: answer the connections already queued (new ones are refused)."""
        time.sleep(DRAIN_SETTLE)
        give_up = time.monotonic() + max(self.cfg.graceful_timeout - 1.0, 0.1)
        listener = self.sockets[0]
        while time.monotonic() < give_up:
            try:
                client, addr = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED, errno.EBADF, errno.EINVAL):
                    return
                raise
            client.setblocking(True)
            self.notify()
            self.handle(listener, client, addr)
