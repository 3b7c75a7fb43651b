"""What ``/metrics`` shows, and the server of ``--metrics-port``.

A scrape reads the app's metrics (summed over every process of the server from its multiprocess
directory, or the app's own registry when it is not served by pre-forked workers), then the
scrape-time collectors other parts registered in ``app.extensions["scrape_collectors"]`` (each has
``collect()`` yielding prometheus_client metric families, evaluated in the scraping process: a
worker, or the master for ``--metrics-port``), then the models' ages computed now.
"""
from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from flask import Flask
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .. import errors
from ..config import ServerConfig
from ..security.tls import server_tls_context
from ..workers import http_errors
from . import request_ids
from .metrics import PREFIX, ServerMetrics
from .multiprocess import server_directory

_logger = logging.getLogger(__name__)

MODEL_CREATED = PREFIX + "model_created_timestamp_seconds"
MODEL_AGE = PREFIX + "model_age_seconds"
#: A metrics-port connection idle this long (TLS handshake included) is closed.
CONNECTION_TIMEOUT = 10.0


def collect(app: Flask) -> list[Metric]:
    """Every metric family ``/metrics`` of ``app`` shows, merged over all the server's processes."""
    metrics: ServerMetrics | None = app.extensions.get("metrics")
    families = list(_recorded(metrics)) if metrics is not None else []
    for collector in app.extensions.get("scrape_collectors", ()):
        try:
            families.extend(collector.collect())
        except Exception:  # one part's bug must not hide every other metric
            _logger.exception("Scrape collector %r failed", collector)
    ages = _model_ages(families, time.time())
    if ages.samples:
        families.append(ages)
    return families


def render(app: Flask, accept: str | None) -> tuple[bytes, str]:
    """``/metrics`` of ``app`` in the format the scraper's ``Accept`` asks for (Prometheus text
    by default, OpenMetrics), and its Content-Type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Families(collect(app))), content_type


class _Families:
    """Collected families, in the shape the encoders read (a registry's ``collect``)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _recorded(metrics: ServerMetrics) -> Iterable[Metric]:
    directory = server_directory()
    if directory is None:
        return metrics.registry.collect()
    return MultiProcessCollector(None, str(directory)).collect()


def _model_ages(families: list[Metric], now: float) -> GaugeMetricFamily:
    """Each served model version's age, from its creation time (0 once no worker serves it)."""
    ages = GaugeMetricFamily(MODEL_AGE, "Age of the served model version (since registered, else saved), "
                                        "in seconds.", labels=("model", "version"))
    for family in families:
        if family.name == MODEL_CREATED:
            for sample in family.samples:
                if sample.value > 0:
                    ages.add_metric((sample.labels["model"], sample.labels["version"]), now - sample.value)
    return ages


# --- --metrics-port -------------------------------------------------------------------------------

def serve_metrics_port(app: Flask) -> MetricsPortServer | None:
    """Serve ``/metrics`` of ``app`` on ``metrics_port`` from this process, in a daemon thread;
    None when no such port is configured.

    Called in the gunicorn master before the workers fork: the master answers scrapes even while
    every worker is busy. Raises :class:`OSError` when the port cannot be bound.
    """
    config: ServerConfig = app.config["SCORING_SERVER"]
    if not config.metrics or config.metrics_port is None:
        return None
    tls = server_tls_context(config)  # the scoring port's certificate
    server = MetricsPortServer((config.host, config.metrics_port), metrics_port_app(app), tls)
    os.register_at_fork(after_in_child=server.socket.close)  # a worker must not keep the port open
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
    _logger.info("Serving /metrics on %s://%s:%d", "https" if tls else "http", config.host, server.server_port)
    return server


def metrics_port_app(app: Flask) -> Flask:
    """The app of ``--metrics-port``: ``app``'s ``/metrics`` and ``/monitoring``, behind the same API
    keys (a key store of its own: this one is used by the master's thread), JSON errors, and no
    other route."""
    from ..error_handlers import register_error_handlers
    from ..routes import metrics as metrics_route
    from ..routes import monitoring as monitoring_route
    from ..security import auth

    config = app.config["SCORING_SERVER"]
    port_app = Flask("scoring_server.metrics_port")
    port_app.config["SCORING_SERVER"] = config
    for shared in ("metrics", "scrape_collectors", "drift"):
        if shared in app.extensions:
            port_app.extensions[shared] = app.extensions[shared]
    port_app.register_blueprint(metrics_route.blueprint)
    port_app.register_blueprint(monitoring_route.blueprint)
    register_error_handlers(port_app)
    auth.install(port_app, config)
    return port_app


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without its stderr line per request, with a connection timeout, and with
    JSON errors for requests it cannot parse (the standard library answers an HTML page)."""

    timeout = CONNECTION_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        error_code = errors.ENDPOINT_NOT_FOUND if code == 404 else errors.BAD_REQUEST
        answer, _ = http_errors.json_response(code, error_code, message or http_errors.reason_phrase(code),
                                              request_ids.new_request_id())
        self.close_connection = True
        try:
            self.wfile.write(answer)
        except OSError:
            pass  # the client is gone


class MetricsPortServer(ThreadingMixIn, WSGIServer):
    """A small WSGI server, one daemon thread per connection. With TLS, the handshake is made in
    the connection's thread, so a client that never completes it does not stop the others."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: Flask, tls: ssl.SSLContext | None) -> None:
        self.address_family = socket.getaddrinfo(*address, type=socket.SOCK_STREAM)[0][0]
        self.tls = tls
        super().__init__(address, _QuietHandler)
        self.set_app(app)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        with self.tls.wrap_socket(request, server_side=True) as tls_request:
            super().finish_request(tls_request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _logger.debug("Metrics port: the connection of %s failed", client_address, exc_info=True)
