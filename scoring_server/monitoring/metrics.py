"""Prometheus metrics of one app: what each request, batch, model load and served model adds up to.

The metric objects belong to the app (its own :class:`~prometheus_client.CollectorRegistry`, never
the client's global one), so that a process may build many apps. Served by gunicorn, every process
writes its values to the server's multiprocess directory and ``/metrics`` sums them over all
workers (:mod:`.exposition`); the master writes its own files too, for the model it loads before
the fork.

A scoring request is counted when the app has its response (a Flask ``after_request`` hook), from
the :class:`~.events.ScoringEvent` its scoring emitted on the same thread: its duration is the
whole request as the app sees it, and a scoring outside a request (a start-up self-check) is not
counted. Label children are cached by label values: finding one costs more than updating it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..config import ServerConfig
from .events import BatchEvent, Event, ModelLoadEvent, ScoringEvent, ServedModelsEvent

PREFIX = "scoring_server_"
#: Bounds of the latency histograms (seconds): 0.5 ms to 10 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Bounds of the model load histogram (seconds): loads take much longer than requests.
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: Bounds of the batch histograms (rows or requests per predict call).
BATCH_BUCKETS = tuple(float(2 ** power) for power in range(17))
#: The endpoint label of a request no route matched (the raw path would be unbounded).
UNKNOWN_ENDPOINT = "unknown"

WsgiApp = Callable[[dict, Callable], Any]


def request_buckets(config: ServerConfig) -> tuple[float, ...]:
    """Bounds of ``scoring_server_request_duration_seconds``: :data:`LATENCY_BUCKETS` plus the
    latency objective, so that the share of requests slower than it is counted exactly."""
    if config.latency_slo_ms is None:
        return LATENCY_BUCKETS
    return tuple(sorted({*LATENCY_BUCKETS, config.latency_slo_ms / 1000}))


def install_metrics(app: Flask, config: ServerConfig) -> None:
    """Count what ``app`` does and serve ``GET /metrics`` (on the scoring port unless
    ``metrics_port`` moves it); nothing at all with ``metrics`` off."""
    if not config.metrics:
        return
    from ..routes import metrics as metrics_route

    metrics = ServerMetrics(config)
    app.extensions["metrics"] = metrics
    app.extensions["observers"].add(metrics.observe)
    app.wsgi_app = metrics.timing(app.wsgi_app)
    app.after_request(metrics.count_response)
    if config.metrics_port is None:
        app.register_blueprint(metrics_route.blueprint)


class LabelChildren(dict):
    """A labelled metric's children by label values (``children[values].inc()``), each looked up
    through ``labels()`` once."""

    def __init__(self, metric: Counter | Histogram) -> None:
        super().__init__()
        self.metric = metric

    def __missing__(self, key: tuple) -> Any:
        child = self[key] = self.metric.labels(*key)
        return child


class _RequestState(threading.local):
    """The request this thread is answering: when it reached the app, and its scoring event."""

    started: float | None = None
    event: ScoringEvent | None = None


class ServerMetrics:
    """The metrics of one app, the observer that feeds them, and its request hooks."""

    def __init__(self, config: ServerConfig) -> None:
        self.registry = CollectorRegistry()
        versions = ("model", "version")
        self.requests = self._counter("requests", "Scoring requests by model and outcome.",
                                      (*versions, "protocol", "format", "outcome", "status"))
        self.request_duration = self._histogram(
            "request_duration_seconds", "Scoring requests from arrival in the app to response, in seconds.",
            (*versions, "outcome"), request_buckets(config))
        self.decode_duration = self._histogram("decode_duration_seconds",
                                               "Decoding and validating request bodies, in seconds.", versions)
        self.predict_duration = self._histogram("predict_duration_seconds", "Model predictions, in seconds.",
                                                versions)
        self.encode_duration = self._histogram("encode_duration_seconds", "Encoding responses, in seconds.",
                                               versions)
        self.rows = self._counter("rows", "Rows scored successfully.", versions)
        self.batch_rows = self._histogram("batch_rows", "Rows per batched predict call.", versions, BATCH_BUCKETS)
        self.batch_requests = self._histogram("batch_requests", "Requests per batched predict call.", versions,
                                              BATCH_BUCKETS)
        self.in_flight = Gauge(PREFIX + "requests_in_flight", "HTTP requests being answered by the app.",
                               registry=self.registry, multiprocess_mode="livesum")
        self.http_requests = self._counter("http_requests", "HTTP requests answered by the app, by route.",
                                           ("endpoint", "status"))
        self.load_duration = self._histogram("model_load_duration_seconds", "Successful model loads, in seconds.",
                                             ("model",), LOAD_BUCKETS)
        self.load_failures = self._counter("model_load_failures", "Model loads that failed.", ("model",))
        self.model_info = Gauge(PREFIX + "model_info", "1 while a live worker serves this model version.",
                                (*versions, "flavor"), registry=self.registry, multiprocess_mode="livemax")
        self.model_created = Gauge(PREFIX + "model_created_timestamp_seconds",
                                   "When the served model version was registered, else saved (Unix time).",
                                   versions, registry=self.registry, multiprocess_mode="livemax")
        self.models_loaded: Gauge | None = None  # made by the first process that serves: not the master
        self._state = _RequestState()
        self._served: set[tuple[str, str, str]] = set()
        self._served_lock = threading.Lock()

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> LabelChildren:
        return LabelChildren(Counter(PREFIX + name, documentation, labels, registry=self.registry))

    def _histogram(self, name: str, documentation: str, labels: tuple[str, ...],
                   buckets: tuple[float, ...] = LATENCY_BUCKETS) -> LabelChildren:
        return LabelChildren(Histogram(PREFIX + name, documentation, labels, registry=self.registry, buckets=buckets))

    # --- the request hooks (on every request's path: keep them cheap) ---------------------------

    def timing(self, wsgi_app: WsgiApp) -> WsgiApp:
        """``wsgi_app`` counted in flight, and its requests timed from their arrival."""
        state, in_flight = self._state, self.in_flight

        def timed_app(environ: dict, start_response: Callable) -> Any:
            state.started, state.event = perf_counter(), None
            in_flight.inc()
            try:
                return wsgi_app(environ, start_response)
            finally:
                in_flight.dec()

        return timed_app

    def count_response(self, response: Response) -> Response:
        """Flask ``after_request`` hook: count the response by route, and the scoring it answers."""
        state = self._state
        started = state.started
        if started is None:  # counted already (Flask runs the hooks again when a later one fails)
            return response
        seconds = perf_counter() - started
        state.started = None
        rule = request.url_rule
        self.http_requests[rule.endpoint if rule is not None else UNKNOWN_ENDPOINT, response.status_code].inc()
        event = state.event
        if event is not None:
            state.event = None
            self._count_scoring(event, seconds)
        return response

    def _count_scoring(self, event: ScoringEvent, seconds: float) -> None:
        model, version, outcome = event.model, event.version or "", event.outcome
        self.requests[model, version, event.protocol, event.format or "", outcome, event.status].inc()
        self.request_duration[model, version, outcome].observe(seconds)
        if event.decode_seconds:
            self.decode_duration[model, version].observe(event.decode_seconds)
        if event.predict_seconds:
            self.predict_duration[model, version].observe(event.predict_seconds)
        if event.encode_seconds:
            self.encode_duration[model, version].observe(event.encode_seconds)
        if event.rows and outcome == "success":
            self.rows[model, version].inc(event.rows)

    # --- the observer -----------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Observer of the app's events; a scoring is counted with its response (:meth:`count_response`)."""
        kind = type(event)
        if kind is ScoringEvent:
            self._state.event = event
        elif kind is BatchEvent:
            model_version = (event.model, event.version or "")
            self.batch_rows[model_version].observe(event.rows)
            self.batch_requests[model_version].observe(event.requests)
        elif kind is ModelLoadEvent:
            if event.error is None:
                self.load_duration[event.model,].observe(event.seconds)
            else:
                self.load_failures[event.model,].inc()
        elif kind is ServedModelsEvent:
            self._serving(event)

    def _serving(self, event: ServedModelsEvent) -> None:
        """This process serves ``event.models`` now: those it stopped serving go to 0."""
        served = {(model.model, model.version or "", model.flavor): model.created for model in event.models}
        with self._served_lock:
            if self.models_loaded is None:
                self.models_loaded = Gauge(PREFIX + "models_loaded", "Models loaded by this worker.",
                                           registry=self.registry, multiprocess_mode="liveall")
            versions = {key[:2] for key in served}
            for key in self._served - served.keys():
                self.model_info.labels(*key).set(0)
                if key[:2] not in versions:
                    self.model_created.labels(*key[:2]).set(0)
            for key, created in served.items():
                self.model_info.labels(*key).set(1)
                if created is not None:
                    self.model_created.labels(*key[:2]).set(created)
            self._served = set(served)
            self.models_loaded.set(len(served))
