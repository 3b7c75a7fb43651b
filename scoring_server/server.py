"""gunicorn, run in-process: the model is loaded once in the master, then workers fork.

Forked workers share the loaded model's memory pages with the master (copy-on-write), the
way ``mlflow models serve`` would need ``--preload`` for. ``GUNICORN_CMD_ARGS`` is honoured
and, as with MLflow's command line, wins over the options given here.
"""
from __future__ import annotations

import gc
import math
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from . import errors
from .config import ServerConfig
from .monitoring import request_ids
from .monitoring.multiprocess import remove_server_directory
from .security.tls import server_tls_context
from .workers import http_errors
from .monitoring.multiprocess import worker_exited as monitoring_worker_exited


class ScoringServerApplication(BaseApplication):
    """A gunicorn application serving an already-built Flask app."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)
        env_args = self.cfg.get_cmd_args_from_env()
        if env_args:
            parsed = self.cfg.parser().parse_args(env_args)
            for key, value in vars(parsed).items():
                if value is not None and key != "args":
                    self.cfg.set(key.lower(), value)

    def load(self) -> Flask:
        return self.application


def start_worker(worker: Any) -> None:
    """gunicorn ``post_worker_init`` hook: what the app asked to run in each worker after the fork
    (background threads, reporting the models it serves)."""
    for start in worker.wsgi.extensions.get("worker_start", ()):
        start()
    # What the worker holds now (the model, the libraries) lives as long as it does: the garbage
    # collector stops scanning it, so a full collection no longer pauses every request for ~100 ms.
    gc.freeze()


def stop_server(arbiter: Any) -> None:
    """gunicorn ``on_exit`` hook (the master, once): remove what the app made for the server's life."""
    from .app import close_app

    close_app(arbiter.app.wsgi())
    remove_server_directory()


def master_ready(arbiter: Any) -> None:
    """gunicorn ``when_ready`` hook (the master, before the first fork): the graceful stop, and
    ``/metrics`` on its own port when ``metrics_port`` is set (served by the master, so that it
    answers while every worker is busy)."""
    from .monitoring.exposition import serve_metrics_port
    from .workers.drain import install_stop_hook

    install_stop_hook(arbiter)
    try:
        serve_metrics_port(arbiter.app.wsgi())
    except OSError as exc:
        arbiter.log.error("Cannot serve /metrics on the metrics port: %s", exc)
        arbiter.halt(reason="the metrics port is unavailable", exit_status=1)


def worker_exited(arbiter: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook (the master): forget what a dead worker was doing."""
    monitoring_worker_exited(worker.pid)


def gunicorn_options(config: ServerConfig) -> dict[str, Any]:
    """gunicorn settings derived from the server configuration.

    The worker classes are ours (:mod:`scoring_server.workers`): JSON errors from the HTTP layer,
    request deadlines, a graceful drain and (``thread``, the default) requests read whole before a
    thread sees them, so that a worker holds many slow connections (``worker_connections``) at no
    cost. gunicorn's silence timeout is kept above the request deadline, so that a request past it
    is answered first; ``graceful_timeout`` is the drain.
    """
    from .monitoring.access_log import logger_class
    from .workers import WORKER_CLASSES

    tls = {"certfile": config.certfile, "keyfile": config.keyfile} if config.certfile else {}
    return {**tls,
        "bind": f"{config.host}:{config.port}",
        "workers": config.workers,
        "threads": config.threads,
        "worker_class": WORKER_CLASSES[config.worker_class],
        "worker_connections": 1000,
        "timeout": max(config.timeout, math.ceil(config.request_timeout) + 5),
        "graceful_timeout": config.drain_seconds,
        "when_ready": master_ready,
        "loglevel": config.log_level,
        "errorlog": "-",
        "logger_class": logger_class(config.access_log),  # the access log (json, text or off)
        "proc_name": "scoring-server",
        "post_worker_init": start_worker,
        "on_exit": stop_server,
        "child_exit": worker_exited,
        # One shared control socket path per user would make two servers on a machine collide.
        "control_socket_disable": True,
    }


def run(app: Flask, config: ServerConfig, listener: socket.socket | None = None) -> None:
    """Serve ``app`` with gunicorn until the master is stopped, on ``listener`` when one was bound first."""
    options = gunicorn_options(config)
    if listener is not None:
        options["bind"] = f"fd://{listener.detach()}"  # gunicorn owns (and closes) the descriptor from here
    ScoringServerApplication(app, options).run()


_LISTEN_BACKLOG = 2048  # gunicorn's default


def bind_listener(config: ServerConfig) -> socket.socket | None:
    """The listening socket, bound before the model loads: a port in use fails at once, in one line (``OSError``),
    and the port answers while loading. None when ``GUNICORN_CMD_ARGS`` binds elsewhere (it wins)."""
    if _gunicorn_environment_binds():
        return None
    host = config.host.strip("[]")
    family = socket.getaddrinfo(host, config.port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, config.port), family=family, backlog=_LISTEN_BACKLOG)


def _gunicorn_environment_binds() -> bool:
    gunicorn_config = Config()
    arguments = gunicorn_config.get_cmd_args_from_env()
    return bool(arguments) and gunicorn_config.parser().parse_args(arguments).bind is not None


@contextmanager
def answering_while_loading(listener: socket.socket | None, config: ServerConfig) -> Iterator[None]:
    """Answer 503 on ``listener`` from one thread for as long as the block runs (the model loads in it).

    The thread stops before gunicorn takes the socket and forks; connections it did not accept wait in the
    socket's backlog for gunicorn's workers.
    """
    if listener is None:
        yield
        return
    stop = threading.Event()
    tls = server_tls_context(config)
    thread = threading.Thread(target=_answer_loading, args=(listener, stop, tls), name="loading-503", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _answer_loading(listener: socket.socket, stop: threading.Event, tls: ssl.SSLContext | None) -> None:
    listener.settimeout(0.05)  # how long the end of loading waits for this loop at most
    try:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            _answer_one(connection, tls)
    finally:
        listener.settimeout(None)


#: ``GET /health`` while loading: alive (a liveness probe must not restart a server loading its model).
_LIVE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n\n"


def _is_liveness_probe(head: bytes) -> bool:
    return head.startswith(b"GET /health ")


def _loading_answer() -> bytes:
    """A 503 with Retry-After: a load balancer or readiness probe sees "not ready yet"."""
    answer, _ = http_errors.json_response(503, errors.TEMPORARILY_UNAVAILABLE, "The model is loading; retry shortly.",
                                          request_ids.new_request_id(), {"Retry-After": "1"})
    return answer


def _answer_one(connection: socket.socket, tls: ssl.SSLContext | None) -> None:
    """Read the request head (a slow or silent client gets a second), answer it (503, or 200 for
    ``/health``) and close."""
    try:
        connection.settimeout(1.0)
        if tls is not None:
            connection = tls.wrap_socket(connection, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = connection.recv(65536)
            if not chunk:
                break
            head += chunk
        connection.sendall(_LIVE if _is_liveness_probe(head) else _loading_answer())
    except OSError:
        pass  # the client went away or spoke no TLS: nothing to answer
    finally:
        connection.close()
