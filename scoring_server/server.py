"""gunicorn, run in-process: the model is loaded once in the master, then workers fork.

Forked workers share the loaded model's memory pages with the master (copy-on-write), the
way ``mlflow models serve`` would need ``--preload`` for. ``GUNICORN_CMD_ARGS`` is honoured
and, as with MLflow's command line, wins over the options given here.
"""
from __future__ import annotations

import math
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from .config import ServerConfig
from .monitoring.multiprocess import remove_server_directory
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


def run(app: Flask, config: ServerConfig) -> None:
    """Serve ``app`` with gunicorn until the master is stopped."""
    ScoringServerApplication(app, gunicorn_options(config)).run()
