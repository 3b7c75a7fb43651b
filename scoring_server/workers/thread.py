"""The default worker: gunicorn's gthread worker, with the request read by its event loop.

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives, and
the thread then reads the request head and body itself: a client sending a byte a second holds a
thread, and ``threads`` such clients stop the worker. Here the event loop (the worker's main
thread) reads every request whole, without ever blocking: its head within ``header_timeout``, its
body within ``body_timeout`` (else a JSON 408), and only then is it given to a thread, which
parses it from memory. A slow client costs a socket and the bytes it sent, never a thread.

The main loop also keeps the deadlines: a request not answered ``request_timeout`` seconds after
it was read whole (waiting for a thread included) is answered with a JSON 504 there and then, and
its thread's answer is dropped when it comes. A thread still running a request past its deadline
is *stuck*; when all of a worker's threads are, the worker answers what it holds with a 503, and
exits for gunicorn to start a fresh one: a hung prediction cannot take a worker for ever.

With one thread (the default), a request read whole is answered on the loop itself, in a greenlet,
and the predictions of the requests the loop read together are batched (see :mod:`.greenlets`);
a watch thread keeps their deadlines, and interrupts the loop (SIGALRM) past one. With more
threads, requests go to the thread pool, for models that wait on something else than the CPU.

On SIGTERM the worker drains (see :mod:`.drain`): requests in flight and already received are
answered with ``Connection: close``, idle kept-alive connections are closed, and when the whole
server stops, the connections already in the listen queue are accepted and answered first.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gsock
from gunicorn.workers import gthread

from . import context, http_errors
from .base import DEADLINE_SLACK, RequestAbandoned, RequestState, ScoringWorkerMixin, request_environ
from .greenlets import CooperativeSocket, RequestGreenlets
from .reader import MORE, WHOLE, RequestReader

_ABANDONED = object()
#: A closed connection's last bytes from the client are read (and dropped) for at most this long,
#: so that the kernel does not reset the answer sent just before.
CLOSE_LINGER = 2.0
#: While draining, an idle kept-alive connection stays open this long for a request already sent.
DRAIN_KEEPALIVE_LINGER = 1.0
#: While the server stops, the listen queue is emptied after this long (handshakes under way finish).
DRAIN_SETTLE = 0.2
#: Bytes a worker holds for requests still arriving, at least (twice ``max_request_bytes`` if more).
BUFFER_BUDGET = 256 * 1024 * 1024
_RECV = 65536
_CHECK_INTERVAL = 0.05


class Conn(gthread.TConn):
    """A client connection, with the bytes of its next request read so far."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, reader: RequestReader) -> None:
        super().__init__(cfg, sock, client, server)
        self.reader = reader
        self.buffer = bytearray()
        self.deadline = 0.0         # reading: when the head (or body) must have arrived
        self.handshaking = False    # TLS handshake not done yet
        self.kept_alive = False     # waiting for the first byte of the next request on the connection
        self.sent_continue = False
        self.whole = False          # the request given to a thread was read whole
        self.request: RequestState | None = None
        self.closing_until = 0.0
        self.drained = 0


class ThreadWorker(ScoringWorkerMixin, gthread.ThreadWorker):
    """gthread with requests read whole by the event loop, deadlines, JSON errors and a drain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: dict[Conn, None] = {}
        self.closing: dict[Conn, None] = {}
        self.in_flight: dict[Conn, RequestState] = {}
        self.replacing = False
        self.buffered = 0             # bytes of requests being read, all connections together
        self.paused: set[Conn] = set()  # bodies not read further while over the budget
        self._listening = True
        self._ssl_context = None
        self._next_check = 0.0
        self.greenlets: RequestGreenlets | None = None  # with one thread: requests answered on the loop
        self._ready: list[Conn] = []  # read whole, to be answered on the loop in this turn
        self._main_thread = 0

    def load_wsgi(self) -> None:
        super().load_wsgi()
        #: At most this many bytes held for requests still arriving, per worker (beyond it, bodies wait).
        self.budget = max(2 * self.settings.max_body, BUFFER_BUDGET)

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.poller.register(self.method_queue.fileno(), selectors.EVENT_READ, self.method_queue.run_callbacks)
        self.set_accept_enabled(True)
        if self.cfg.threads == 1:
            self._answer_on_the_loop()
        while self.alive:
            self.notify()
            can_accept = self.nr_conns < self.worker_connections
            if can_accept != self._accepting:
                self.set_accept_enabled(can_accept)
            self.wait_for_and_dispatch_events(timeout=self._tick())
            if self._ready:
                self._answer_ready()
            if not self.is_parent_alive():
                break
            now = time.monotonic()
            if now >= self._next_check:
                self._expire(now)
        if self.replacing:
            self._replace()
        self._drain()

    def _tick(self) -> float:
        """How long the loop may wait for events: until the next request deadline, at most a second
        (and the next check of deadlines is due then)."""
        now = time.monotonic()
        nearest = now + 1.0
        for state in self.in_flight.values():
            if state.status <= RequestState.RUNNING and state.deadline + DEADLINE_SLACK < nearest:
                nearest = state.deadline + DEADLINE_SLACK
        self._next_check = min(self._next_check, nearest)
        return max(nearest - now, 0.0)

    def _expire(self, now: float) -> None:
        """Answer what is past its deadline: requests (504), slow requests being read (408). At most
        every 50 ms (and when a request deadline is due), so that a busy loop does not pay for it."""
        self._next_check = now + _CHECK_INTERVAL
        if self.greenlets is not None:
            self.greenlets.expire_writers(now)
        if self.paused and self.buffered <= self.budget // 2:
            for conn in self.paused:
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))
            self.paused.clear()
        for conn, state in list(self.in_flight.items()):
            if now >= state.deadline + DEADLINE_SLACK and state.abandon():
                self._answer_and_shut(conn, self.deadline_answer(state, conn.client))
        for conn in [conn for conn in self.reading if now >= conn.deadline]:
            if conn.buffer:
                what = "body" if conn.reader.in_body else "request line and headers"
                self.log.warning("Closing the connection of %s: its %s did not arrive in time", _peer(conn), what)
                seconds = self.settings.body_timeout if conn.reader.in_body else self.settings.header_timeout
                message = (f"The request's {what} did not arrive within {seconds:g} s (server limit "
                           f"`{'body_timeout' if conn.reader.in_body else 'header_timeout'}`).")
                environ = request_environ(None, None, conn.client)
                http_errors.send_nowait(conn.sock, self.worker_answer(408, "BAD_REQUEST", message, environ, None))
            self._stop_reading(conn)
            self._close(conn)
        for conn in [conn for conn in self.closing if now >= conn.closing_until]:
            self._closed(conn)
        stuck = sum(1 for state in self.in_flight.values() if state.stuck)
        if stuck and stuck >= self.cfg.threads and self.alive:
            self.log.error("All %d threads of worker %s are stuck in requests past their deadline: the worker "
                           "is replaced", self.cfg.threads, self.pid)
            self.replacing = True
            self.alive = False

    # --- reading requests -------------------------------------------------------------------------

    def accept(self, listener: Any) -> None:
        """Accept one connection (the workers take turns: a worker taking all it can would serve a
        pool of kept-alive connections alone) and read what it has sent already."""
        try:
            client, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        _set_io_timeouts(client, self.settings.body_timeout)
        reader = RequestReader(self.cfg.limit_request_line or 1 << 20, _head_limit(self.cfg), self.settings.max_body)
        conn = Conn(self.cfg, client, addr, listener.getsockname(), reader)
        if self.cfg.is_ssl:
            try:
                conn.sock = self._tls_context().wrap_socket(client, server_side=True, do_handshake_on_connect=False,
                                                            suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
            except (OSError, ValueError):
                self._closed(conn)
                return
            conn.sock.setblocking(False)
            conn.handshaking = True
        self._read(conn, time.monotonic() + self.settings.header_timeout)
        self._readable(conn, conn.sock)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = gsock.ssl_context(self.cfg)
        return self._ssl_context

    def _read(self, conn: Conn, deadline: float, pending: bytes = b"", kept_alive: bool = False) -> None:
        """Read ``conn``'s next request (``pending``: bytes of it already received) by ``deadline``
        (for its first byte only, if ``kept_alive``: then ``header_timeout`` applies)."""
        conn.reader.reset()
        conn.buffer = bytearray(pending)
        conn.kept_alive = kept_alive and not pending
        conn.deadline = time.monotonic() + self.settings.header_timeout if pending else deadline
        conn.sent_continue = False
        conn.sock.setblocking(False)
        self.reading[conn] = None
        self.buffered += len(pending)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))
        if pending:
            self._advance(conn)

    def _readable(self, conn: Conn, _sock: Any) -> None:
        if conn.handshaking and not self._handshake(conn):
            return
        try:
            data = conn.sock.recv(_RECV)
            if data and conn.handshaking is False and isinstance(conn.sock, ssl.SSLSocket):
                while conn.sock.pending():
                    data += conn.sock.recv(conn.sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ValueError):
            self._stop_reading(conn)
            self._closed(conn)
            return
        if not data:  # the client stopped sending
            if conn.buffer:  # a request cut short: the parser or the app says so
                self._dispatch(conn, whole=False)
            else:
                self._stop_reading(conn)
                self._closed(conn)
            return
        if conn.kept_alive:  # the next request on a kept-alive connection has begun
            conn.kept_alive = False
            conn.deadline = time.monotonic() + self.settings.header_timeout
        conn.buffer += data
        self.buffered += len(data)
        if self.buffered > self.budget and conn.reader.in_body:
            # Too much held for requests still arriving: this body waits (its deadline runs).
            self.poller.unregister(conn.sock)
            self.paused.add(conn)
        self._advance(conn)

    def _handshake(self, conn: Conn) -> bool:
        try:
            conn.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except (OSError, ValueError) as exc:
            self.log.debug("TLS handshake with %s failed: %s", _peer(conn), exc)
            self._stop_reading(conn)
            self._closed(conn)
            return False
        conn.handshaking = False
        return True

    def _advance(self, conn: Conn) -> None:
        in_body = conn.reader.in_body
        state = conn.reader.feed(conn.buffer)
        if state == MORE:
            if conn.reader.in_body and not in_body:
                conn.deadline = time.monotonic() + self.settings.body_timeout
            if conn.reader.expects_continue and not conn.sent_continue:
                conn.sent_continue = True
                http_errors.send_nowait(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self._dispatch(conn, whole=state == WHOLE)

    def _stop_reading(self, conn: Conn) -> None:
        if self.reading.pop(conn, 0) is None:
            self.buffered -= len(conn.buffer)
        self.paused.discard(conn)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _dispatch(self, conn: Conn, whole: bool) -> None:
        """Give the request read so far to a thread."""
        self._stop_reading(conn)
        conn.whole = whole
        now = time.monotonic()
        conn.request = self.in_flight[conn] = RequestState(now, now + self.settings.request_timeout)
        # Not read whole: where the next request would start is unknown, so the answer closes.
        conn.request.close_after = not whole
        if self.greenlets is not None and whole:
            self._ready.append(conn)
        else:
            self.enqueue_req(conn)

    # --- a thread answers -------------------------------------------------------------------------

    def handle(self, conn: Conn) -> Any:
        """Answer one request (a pool thread): parse it from the bytes read, run the app."""
        state = conn.request
        if not state.start():
            return _ABANDONED
        self.run_request(state)
        req = None
        try:
            if self.greenlets is None or conn.whole is False:
                conn.sock.setblocking(True)
                # The request is in memory. Reading more (a request cut short) or sending to a client that
                # does not read is bounded by the kernel (SO_RCVTIMEO, SO_SNDTIMEO, set on accept).
            if conn.parser is None:
                conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
                conn.initialized = True
            conn.parser.unreader.unread(bytes(conn.buffer))
            conn.buffer = bytearray()
            req = next(conn.parser)
            if not req:
                return False
            if conn.sent_continue:
                req._expected_100_continue = False
            if not self.handle_request(req, conn):
                return False
            # The body was read whole, so what the app left of it is in memory: drop it.
            return conn.whole and bool(conn.parser.finish_body())
        except RequestAbandoned:
            return _ABANDONED
        except http.errors.NoMoreData as exc:
            self.log.debug("Ignored premature client disconnection. %s", exc)
        except StopIteration as exc:
            self.log.debug("Closing connection. %s", exc)
        except ssl.SSLError as exc:
            self.log.debug("TLS error processing a request: %s", exc)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.log.warning("Closing the connection of %s: it did not send or read within %g s "
                                 "(body_timeout)", _peer(conn), self.settings.body_timeout)
            elif exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, None):
                self.log.exception("Socket error processing request.")
        except Exception as exc:  # noqa: BLE001 - gunicorn's parse errors, answered as JSON
            self.handle_error(req, conn.sock, conn.client, exc)
        finally:
            self.request_done(state)
        return False

    def finish_request(self, conn: Conn, fs: Any) -> None:
        """Back on the main thread: read the connection's next request, or close it."""
        try:
            result = fs.result() if not fs.cancelled() else False
        except Exception:  # noqa: BLE001
            result = False
        self._finished(conn, result)

    def _finished(self, conn: Conn, result: Any) -> None:
        """On the loop, ``handle``'s ``result`` for ``conn``: read its next request, or close it."""
        state = self.in_flight.pop(conn, None)
        if result is _ABANDONED or (state is not None and state.abandoned):
            self._closed(conn)  # answered (and shut) at its deadline
        elif result is True:
            # The answer said keep-alive, so the client may be sending its next request already: it
            # is read even while draining (and answered with Connection: close), never cut off.
            pending = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
            keep = self.cfg.keepalive if self.alive else min(self.cfg.keepalive, DRAIN_KEEPALIVE_LINGER)
            self._read(conn, time.monotonic() + keep, pending, kept_alive=True)
        else:
            self._close(conn)

    # --- answering on the loop (one thread) ----------------------------------------------------------

    def _answer_on_the_loop(self) -> None:
        """Answer whole requests in greenlets of this thread; start the watch of their deadlines."""
        self.greenlets = RequestGreenlets(self.poller, self.settings.body_timeout)
        self._main_thread = threading.get_ident()
        signal.signal(signal.SIGALRM, self._interrupt)
        threading.Thread(target=self._watch, name="deadline-watch", daemon=True).start()

    def _answer_ready(self) -> None:
        """Answer the requests read whole in this turn: each up to its prediction (or to its end),
        then their predictions together, then their answers."""
        ready, self._ready = self._ready, []
        for conn in ready:
            self.greenlets.start(self._answer_in_greenlet, conn, conn.request)
        self.greenlets.flush(context.deadline_exceeded)

    def _answer_in_greenlet(self, conn: Conn) -> None:
        context.set_batch_loop(self.greenlets)
        sock = conn.sock
        conn.sock = CooperativeSocket(sock, self.greenlets)
        try:
            result = self.handle(conn)
        finally:
            conn.sock = sock
        self._finished(conn, result)

    def _watch(self) -> None:
        """The watch thread: answer what runs on the loop past its deadline (504), and interrupt it."""
        while self.alive:
            now = time.monotonic()
            running = self.greenlets.running
            late = [state for state in running if now >= state.deadline + DEADLINE_SLACK and state.abandon()]
            if late:
                for conn, state in list(self.in_flight.items()):
                    if state in late:
                        self._answer_and_shut(conn, self.deadline_answer(state, conn.client))
                signal.pthread_kill(self._main_thread, signal.SIGALRM)
            time.sleep(_CHECK_INTERVAL)

    def _interrupt(self, signum: int, frame: Any) -> None:
        """SIGALRM from the watch thread: stop the code of a request answered at its deadline."""
        if any(state.abandoned for state in self.greenlets.running):
            raise RequestAbandoned()

    # --- closing ----------------------------------------------------------------------------------

    def _answer_and_shut(self, conn: Conn, answer: bytes) -> None:
        """Send ``answer`` without waiting and shut the connection (its thread may still hold it:
        the socket is closed when the thread is done)."""
        http_errors.send_nowait(conn.sock, answer)
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass

    def _close(self, conn: Conn) -> None:
        """Close after an answer, without resetting it: send FIN, then read what the client still
        sends until it closes too (at most ``CLOSE_LINGER`` seconds), all without blocking."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            self._closed(conn)
            return
        conn.closing_until = time.monotonic() + CLOSE_LINGER
        conn.drained = 0
        self.closing[conn] = None
        try:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._closing_readable, conn))
        except (KeyError, ValueError, OSError):
            self._closed(conn)

    def _closing_readable(self, conn: Conn, _sock: Any) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ValueError):
            data = b""
        conn.drained += len(data)
        if not data or conn.drained > 1 << 20:
            self._closed(conn)

    def _closed(self, conn: Conn) -> None:
        """Forget ``conn`` and close its socket."""
        if self.closing.pop(conn, 0) is None:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        try:
            conn.sock.close()
        except OSError:
            pass

    # --- stopping ---------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Stop accepting (after emptying the listen queue when the server stops), answer what was
        received, close idle connections, within gunicorn's ``graceful_timeout``."""
        started = time.monotonic()
        stopping = context.server_stopping()
        # A little before the master's SIGKILL, so that the last answers (503) go out.
        give_up = started + max(self.cfg.graceful_timeout - 0.5, 0.1)
        if not stopping:
            self._stop_listening()
        for conn in self.reading:
            if not conn.buffer:
                conn.deadline = min(conn.deadline, started + DRAIN_KEEPALIVE_LINGER)
        while time.monotonic() < give_up:
            now = time.monotonic()
            if self._listening and now >= started + DRAIN_SETTLE:
                self._empty_listen_queue()
                self._stop_listening()
            if not self._listening and self.nr_conns <= 0:
                break
            self.notify()
            self.wait_for_and_dispatch_events(timeout=min(self._tick(), 0.05 if self._listening else 0.25))
            if self._ready:
                self._answer_ready()
            for conn in self.reading:
                if not conn.buffer:  # kept alive, or accepted while draining and silent
                    conn.deadline = min(conn.deadline, now + DRAIN_KEEPALIVE_LINGER)
            self._expire(time.monotonic())
        self._stop_listening()
        self._give_up_on_what_remains("The server stopped before the request was answered.")
        self.tpool.shutdown(wait=False)
        self.poller.close()
        self.method_queue.close()

    def _empty_listen_queue(self) -> None:
        for listener in self.sockets:
            for _ in range(10_000):
                before = self.nr_conns
                self.accept(listener)
                if self.nr_conns == before:
                    break

    def _stop_listening(self) -> None:
        if not self._listening:
            return
        self._listening = False
        self.set_accept_enabled(False)
        for listener in self.sockets:
            listener.close()

    def _give_up_on_what_remains(self, message: str) -> None:
        for conn, state in list(self.in_flight.items()):
            if state.abandon():
                environ = request_environ(state.environ, None, conn.client)
                answer = self.worker_answer(503, "TEMPORARILY_UNAVAILABLE", message, environ, state.dispatched)
                self._answer_and_shut(conn, answer)
        for conn in list(self.reading):
            if conn.buffer:
                environ = request_environ(None, None, conn.client)
                answer = self.worker_answer(503, "TEMPORARILY_UNAVAILABLE", message, environ, None)
                http_errors.send_nowait(conn.sock, answer)
            self._stop_reading(conn)
            self._closed(conn)
        for conn in list(self.closing):
            self._closed(conn)

    def _replace(self) -> None:
        """Every thread is stuck: answer what this worker holds with a 503 and exit now (the
        threads cannot be stopped, and would keep the process from exiting)."""
        self._stop_listening()
        self._give_up_on_what_remains("The worker serving this request was replaced (its threads were stuck in "
                                      "requests past their deadline); retry.")
        self.log.info("Worker exiting (pid: %s): replaced", self.pid)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(1)



def _head_limit(cfg: Any) -> int:
    """The most bytes a request head may take under gunicorn's limits (then its parser answers 431)."""
    fields = cfg.limit_request_fields or 32768
    field_size = cfg.limit_request_field_size or 8190
    return (cfg.limit_request_line or 8190) + 2 + min(fields * (field_size + 2), 1 << 20) + 2


def _set_io_timeouts(sock: socket.socket, seconds: float) -> None:
    """Bound every blocking read and write of a thread on ``sock`` (in the kernel: a Python socket
    timeout would poll before each call, which costs the hot path)."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except OSError:
        pass


def _peer(conn: Conn) -> str:
    client = conn.client
    return client[0] if isinstance(client, tuple) else str(client)
