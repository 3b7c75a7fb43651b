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

import struct
import threading
from bisect import bisect_left
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..config import ServerConfig
from .events import BatchEvent, Event, ModelLoadEvent, ScoringEvent, ServedModelsEvent, outcome_of
from .multiprocess import process_id

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


def label_series(metric: Counter | Histogram) -> Cache:
    """A labelled metric's series by label values (``series[values].inc(n)`` or ``.observe(x)``), each
    looked up through ``labels()`` once, then updated through :func:`fast_series`."""
    return Cache(lambda key: fast_series(metric.labels(*key)))


def fast_series(child: Counter | Histogram | Gauge) -> Any:
    """The values prometheus_client keeps behind a counter's or gauge's child (``inc(amount)``), or
    a histogram child's sum and buckets (:class:`FastHistogram`), each as a :class:`SharedValue`
    in multiprocess mode.

    Updating them directly skips the per-call checks of the public methods (observability,
    non-negative amounts, exemplars) that our callers never need, and the linear bucket search:
    a scoring request updates a dozen values, and the public path costs about three times as
    much. ``test_metrics`` checks that both paths write the same numbers, in both modes.
    """
    if isinstance(child, Histogram):
        return FastHistogram(_writable(child._sum), [_writable(bucket) for bucket in child._buckets],
                             child._upper_bounds)
    return _writable(child._value)


def _writable(value: Any) -> Any:
    return SharedValue(value) if getattr(value, "_multiprocess", False) else value


_shared_lock = threading.Lock()
_pack_value = struct.Struct("dd").pack_into  # a value and its timestamp, as prometheus_client stores them


class SharedValue:
    """A prometheus_client multiprocess value, written in place in this process's file.

    prometheus_client's own takes its lock, asks for the process ID and looks the value's place
    up in its file on every update; this finds the place once per process (after a fork,
    prometheus_client moves every value to the new process's files: :meth:`_attach` follows) and
    then writes the running total there. A file that grows is mapped again, but the mapping held
    here stays valid: both map the same file.
    """

    __slots__ = ("_map", "_pid", "_position", "_source", "_total")

    def __init__(self, source: Any) -> None:
        self._source, self._pid = source, None

    def inc(self, amount: float) -> None:
        with _shared_lock:
            if self._pid != process_id():
                self._attach()
            self._total += amount
            _pack_value(self._map, self._position, self._total, 0.0)

    def _attach(self) -> None:
        source = self._source
        source.get()  # after a fork, prometheus_client opens this process's files (writing nothing)
        file = source._file
        self._total = file.read_value(source._key)[0]
        self._map, self._position = file._m, file._positions[source._key]
        self._pid = process_id()


class FastHistogram:
    """``observe`` of one histogram series, on its sum and bucket values."""

    __slots__ = ("_buckets", "_bounds", "_sum")

    def __init__(self, total: Any, buckets: list[Any], bounds: list[float]) -> None:
        self._sum, self._buckets, self._bounds = total, buckets, bounds

    def observe(self, amount: float) -> None:
        self._sum.inc(amount)
        self._buckets[bisect_left(self._bounds, amount)].inc(1)  # the first bound >= amount; the last is +Inf


class Cache(dict):
    """Values made by ``make(key)`` on first use: finding a series costs more than updating it."""

    def __init__(self, make: Callable[[tuple], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: tuple) -> Any:
        value = self[key] = self.make(key)
        return value


@dataclass(frozen=True)
class ScoringSeries:
    """Every series one kind of scoring request updates, found with one lookup per request."""

    requests: Any
    duration: FastHistogram
    decode: FastHistogram
    predict: FastHistogram
    encode: FastHistogram
    rows: Any


class _RequestTiming:
    """A request being answered: when it reached the app, and its scoring event."""

    __slots__ = ("started", "event")

    def __init__(self, started: float) -> None:
        self.started: float | None = started
        self.event: ScoringEvent | None = None


# The request being answered where this code runs (its thread, or its greenlet: each has its own context).
_timing: ContextVar[_RequestTiming | None] = ContextVar("request_timing", default=None)


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
        self._scoring = Cache(self._scoring_series)
        self._served: set[tuple[str, str, str]] = set()
        self._served_lock = threading.Lock()

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> Cache:
        return label_series(Counter(PREFIX + name, documentation, labels, registry=self.registry))

    def _histogram(self, name: str, documentation: str, labels: tuple[str, ...],
                   buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Cache:
        return label_series(Histogram(PREFIX + name, documentation, labels, registry=self.registry, buckets=buckets))

    # --- the request hooks (on every request's path: keep them cheap) ---------------------------

    def timing(self, wsgi_app: WsgiApp) -> WsgiApp:
        """``wsgi_app`` counted in flight, and its requests timed from their arrival."""
        in_flight = fast_series(self.in_flight)

        def timed_app(environ: dict, start_response: Callable) -> Any:
            token = _timing.set(_RequestTiming(perf_counter()))
            in_flight.inc(1)
            try:
                return wsgi_app(environ, start_response)
            finally:
                in_flight.inc(-1)
                _timing.reset(token)

        return timed_app

    def count_response(self, response: Response) -> Response:
        """Flask ``after_request`` hook: count the response by route, and the scoring it answers."""
        state = _timing.get()
        started = state.started if state is not None else None
        if started is None:  # counted already (Flask runs the hooks again when a later one fails)
            return response
        seconds = perf_counter() - started
        state.started = None
        rule = request.url_rule
        self.http_requests[rule.endpoint if rule is not None else UNKNOWN_ENDPOINT, response.status_code].inc(1)
        event = state.event
        if event is not None:
            state.event = None
            self._count_scoring(event, seconds)
        return response

    def _count_scoring(self, event: ScoringEvent, seconds: float) -> None:
        series = self._scoring[event.model, event.version, event.protocol, event.format, event.status]
        series.requests.inc(1)
        series.duration.observe(seconds)
        if event.decode_seconds:
            series.decode.observe(event.decode_seconds)
        if event.predict_seconds:
            series.predict.observe(event.predict_seconds)
        if event.encode_seconds:
            series.encode.observe(event.encode_seconds)
        if event.rows and event.status < 400:
            series.rows.inc(event.rows)

    def _scoring_series(self, key: tuple) -> ScoringSeries:
        """The series a scoring request of this model, version, protocol, format and status updates."""
        model, version, protocol, format_, status = key
        version, outcome = version or "", outcome_of(status)
        versions = (model, version)
        return ScoringSeries(self.requests[(*versions, protocol, format_ or "", outcome, status)],
                             self.request_duration[(*versions, outcome)], self.decode_duration[versions],
                             self.predict_duration[versions], self.encode_duration[versions], self.rows[versions])

    # --- the observer -----------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Observer of the app's events; a scoring is counted with its response (:meth:`count_response`)."""
        kind = type(event)
        if kind is ScoringEvent:
            state = _timing.get()
            if state is not None:
                state.event = event
        elif kind is BatchEvent:
            model_version = (event.model, event.version or "")
            self.batch_rows[model_version].observe(event.rows)
            self.batch_requests[model_version].observe(event.requests)
        elif kind is ModelLoadEvent:
            if event.error is None:
                self.load_duration[event.model,].observe(event.seconds)
            else:
                self.load_failures[event.model,].inc(1)
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
