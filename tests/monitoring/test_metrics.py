"""Prometheus metrics: what each request, model load and served model adds up to (in-process), and
the sums over pre-forked workers of a real server, exact after a worker is SIGKILLed and replaced."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import requests
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from flavors.python_function import save_model
from scoring_server.config import load_config
from scoring_server.monitoring import BatchEvent, ScoringEvent, ServedModel, ServedModelsEvent
from scoring_server.monitoring.exposition import collect, metrics_port_app, serve_metrics_port
from scoring_server.monitoring.metrics import LATENCY_BUCKETS, ServerMetrics, request_buckets
from scoring_server.security.keys import create_key

from ..conftest import (InProcessServer, RunningServer, assert_error, constant_model, free_port, raw_exchange,
                        worker_pids)

#: A model that answers, for each row, the pid of the process that scored it; a negative ``x`` is a
#: model error, and ``x`` over 1000 holds the request (after writing the pid to $PID_MODEL_HOLD_FILE).
PID_MODEL = textwrap.dedent('''
    import os
    import time
    from pathlib import Path

    import numpy as np
    from flavors.python_model import PythonModel, set_model


    class Pids(PythonModel):
        def predict(self, context, model_input, params=None):
            if (model_input["x"] < 0).any():
                raise ValueError("x must not be negative")
            if (model_input["x"] > 1000).any():
                Path(os.environ["PID_MODEL_HOLD_FILE"]).write_text(str(os.getpid()))
                time.sleep(60)
            time.sleep(0.002)  # long enough for concurrent requests to reach both workers
            return np.full(len(model_input), os.getpid())


    set_model(Pids())
''')


def rows(*values: float) -> dict:
    return {"dataframe_split": {"columns": ["x"], "data": [[value] for value in values]}}


def save_pid_model(root: Path) -> Path:
    code = root / "pid_model.py"
    code.write_text(PID_MODEL)
    save_model(root / "pids", python_model=str(code), input_example=pd.DataFrame({"x": [1.0]}))
    return root / "pids"


@pytest.fixture(scope="module")
def pid_model(tmp_path_factory) -> Path:
    return save_pid_model(tmp_path_factory.mktemp("pid-model"))


@pytest.fixture(scope="module")
def constant(tmp_path_factory) -> Path:
    """A scikit-learn model named "constant" (columns a, b)."""
    return constant_model(tmp_path_factory.mktemp("constant") / "constant", 1.0)


def scrape(server, path: str = "/metrics", **headers: str) -> list:
    """The samples of ``server``'s /metrics."""
    response = server.get(path, **headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def total(samples: list, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(sample.value for sample in samples
               if sample.name == name and labels.items() <= sample.labels.items())


def label_values(samples: list, name: str, label: str) -> set[str]:
    return {sample.labels[label] for sample in samples if sample.name == name}


# --- in-process: what is counted ---------------------------------------------------------------

def test_scoring_requests_are_counted_by_model_outcome_status_and_stage(pid_model):
    server = InProcessServer(pid_model)
    assert server.post(rows(1.0)).status_code == 200
    assert server.post(rows(1.0, 2.0, 3.0)).status_code == 200
    assert_error(server.post(rows(-1.0)), 400, "BAD_REQUEST")  # the model's error
    assert_error(server.post("{not json"), 400, "BAD_REQUEST")  # refused before its format is known
    samples = scrape(server)
    scoring = {"model": "pids", "version": "", "protocol": "mlflow2"}
    assert total(samples, "scoring_server_requests_total", **scoring, format="dataframe_split",
                 outcome="success", status="200") == 2
    assert total(samples, "scoring_server_requests_total", **scoring, format="dataframe_split",
                 outcome="client_error", status="400") == 1
    assert total(samples, "scoring_server_requests_total", **scoring, format="", outcome="client_error",
                 status="400") == 1
    assert total(samples, "scoring_server_requests_total") == 4
    assert total(samples, "scoring_server_rows_total", model="pids", version="") == 4  # successful rows only
    for outcome, count in (("success", 2), ("client_error", 2)):
        assert total(samples, "scoring_server_request_duration_seconds_count", outcome=outcome) == count
        assert total(samples, "scoring_server_request_duration_seconds_bucket", outcome=outcome, le="+Inf") == count
    # The successful ones took the model's 2 ms at least: in no bucket under 2 ms, all of them by 10 s.
    assert total(samples, "scoring_server_request_duration_seconds_bucket", outcome="success", le="0.001") == 0
    assert total(samples, "scoring_server_request_duration_seconds_bucket", outcome="success", le="10.0") == 2
    assert total(samples, "scoring_server_request_duration_seconds_sum", outcome="success") >= 0.004
    assert total(samples, "scoring_server_decode_duration_seconds_count") == 3  # the invalid JSON never decoded
    assert total(samples, "scoring_server_predict_duration_seconds_count") == 2  # stages that completed
    assert total(samples, "scoring_server_encode_duration_seconds_count") == 2
    assert total(samples, "scoring_server_predict_duration_seconds_sum") >= 0.004
    assert total(samples, "scoring_server_http_requests_total", endpoint="scoring.invocations") == 4


def test_every_route_is_counted_by_endpoint_never_by_path(constant):
    server = InProcessServer(constant)
    server.get("/ping")
    assert_error(server.get("/secret-path-xyz"), 404, "ENDPOINT_NOT_FOUND")
    assert server.request("DELETE", "/ping").status_code == 405
    scrape(server)  # a scrape is counted once answered: the next one shows it
    response = server.get("/metrics")
    samples = [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]
    assert total(samples, "scoring_server_http_requests_total", endpoint="health.ping", status="200") == 1
    assert total(samples, "scoring_server_http_requests_total", endpoint="unknown", status="404") == 1
    assert total(samples, "scoring_server_http_requests_total", endpoint="unknown", status="405") == 1
    assert total(samples, "scoring_server_http_requests_total", endpoint="metrics.metrics", status="200") == 1
    assert "secret-path-xyz" not in response.text
    assert total(samples, "scoring_server_requests_in_flight") == 1  # the scrape itself
    assert total(samples, "scoring_server_requests_total") == 0


def test_the_latency_objective_is_an_exact_bucket_bound(constant):
    config = load_config(env={}, overrides={"latency_slo_ms": 30})
    assert request_buckets(config) == tuple(sorted((*LATENCY_BUCKETS, 0.03)))
    assert request_buckets(load_config(env={}, overrides={"latency_slo_ms": 250})) == LATENCY_BUCKETS
    assert request_buckets(load_config(env={})) == LATENCY_BUCKETS
    server = InProcessServer(constant, latency_slo_ms=30)
    server.post({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}})
    samples = scrape(server)
    assert total(samples, "scoring_server_request_duration_seconds_bucket", le="0.03") == 1
    assert "0.03" not in label_values(samples, "scoring_server_decode_duration_seconds_bucket", "le")


def test_scoring_outside_a_request_is_not_counted(constant):
    """A start-up self-check scores without a request: it is no traffic."""
    server = InProcessServer(constant)
    server.app.extensions["observers"].emit(ScoringEvent("constant", None, "mlflow2", "dataframe_split", 1))
    server.get("/ping")
    assert total(scrape(server), "scoring_server_requests_total") == 0


def test_model_loads_and_load_failures_are_counted(constant, tmp_path):
    root = tmp_path / "models"
    constant_model(root / "good", 1.0)
    (root / "broken").mkdir()
    (root / "broken" / "MLmodel").write_text("flavors: {}\n")
    server = InProcessServer(None, model_root=str(root))
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
    assert server.post(body, path="/models/good/invocations").status_code == 200
    assert server.post(body, path="/models/broken/invocations").status_code >= 400
    samples = scrape(server)
    assert total(samples, "scoring_server_model_load_duration_seconds_count", model="good") == 1
    assert total(samples, "scoring_server_model_load_failures_total", model="broken") == 1
    assert total(samples, "scoring_server_model_load_failures_total", model="good") == 0
    single = InProcessServer(constant)
    assert total(scrape(single), "scoring_server_model_load_duration_seconds_count", model="constant") == 1


def test_served_models_give_info_creation_time_age_and_count_until_unloaded(constant):
    server = InProcessServer(constant)
    for start in server.app.extensions["worker_start"]:  # what each worker does after the fork
        start()
    samples = scrape(server)
    assert total(samples, "scoring_server_model_info", model="constant", version="", flavor="sklearn") == 1
    created = total(samples, "scoring_server_model_created_timestamp_seconds", model="constant")
    assert abs(created - (constant / "MLmodel").stat().st_mtime) < 120
    age = total(samples, "scoring_server_model_age_seconds", model="constant", version="")
    assert abs(age - (time.time() - created)) < 5
    assert total(samples, "scoring_server_models_loaded") == 1
    observers = server.app.extensions["observers"]
    observers.emit(ServedModelsEvent((ServedModel("other", "2", "sklearn", None),)))
    samples = scrape(server)
    assert total(samples, "scoring_server_model_info", model="constant") == 0  # no longer served here
    assert total(samples, "scoring_server_model_info", model="other", version="2") == 1
    assert label_values(samples, "scoring_server_model_age_seconds", "model") == set()  # "other": no known time
    observers.emit(ServedModelsEvent(()))
    samples = scrape(server)
    assert total(samples, "scoring_server_models_loaded") == 0
    assert total(samples, "scoring_server_model_info") == 0


def test_batches_are_counted_by_rows_and_requests(constant):
    server = InProcessServer(constant)
    observers = server.app.extensions["observers"]
    observers.emit(BatchEvent("constant", None, rows=12, requests=3))
    observers.emit(BatchEvent("constant", None, rows=1, requests=1))
    samples = scrape(server)
    assert total(samples, "scoring_server_batch_rows_count", model="constant", version="") == 2
    assert total(samples, "scoring_server_batch_rows_sum", model="constant") == 13
    assert total(samples, "scoring_server_batch_rows_bucket", model="constant", le="8.0") == 1
    assert total(samples, "scoring_server_batch_requests_sum", model="constant") == 4


def test_concurrent_requests_of_a_batching_server_are_batched(constant):
    server = InProcessServer(constant, threads=4, batching="on", max_batch_time_ms=50)
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
    with ThreadPoolExecutor(4) as pool:
        assert {response.status_code for response in pool.map(lambda _: server.post(body), range(8))} == {200}
    samples = scrape(server)
    assert total(samples, "scoring_server_batch_requests_sum") == 8
    assert total(samples, "scoring_server_batch_rows_sum") == 8
    assert total(samples, "scoring_server_requests_total") == 8


def test_scrape_collectors_are_shown_and_one_failing_hides_nothing_else(constant, caplog):
    server = InProcessServer(constant)

    class Drift:
        def collect(self):
            family = GaugeMetricFamily("scoring_server_test_drift", "A part's scrape-time metric.", labels=["f"])
            family.add_metric(["a"], 0.25)
            yield family

    class Broken:
        def collect(self):
            raise RuntimeError("collector bug")

    server.app.extensions["scrape_collectors"].extend([Broken(), Drift()])
    samples = scrape(server)
    assert total(samples, "scoring_server_test_drift", f="a") == 0.25
    assert total(samples, "scoring_server_model_load_duration_seconds_count") == 1
    assert "collector bug" in caplog.text
    assert {family.name for family in collect(server.app)} >= {"scoring_server_test_drift", "scoring_server_requests"}


def test_openmetrics_is_answered_to_scrapers_that_ask_for_it(constant):
    server = InProcessServer(constant)
    response = server.get("/metrics", Accept="application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")


def test_metrics_off_means_no_route_no_observer_no_hooks(constant):
    server = InProcessServer(constant, metrics=False)
    assert_error(server.get("/metrics"), 404, "ENDPOINT_NOT_FOUND")
    app = server.app
    assert "metrics" not in app.extensions
    assert not any(isinstance(getattr(hook, "__self__", None), ServerMetrics)
                   for hook in [*app.after_request_funcs.get(None, []), *app.extensions["observers"]._observers])
    assert not {family.name for family in collect(app)} & {"scoring_server_requests", "scoring_server_http_requests"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return path, {name: create_key(path, name, [name])[0] for name in ("read", "score")}


def test_metrics_need_the_read_scope(constant, keys):
    path, issued = keys
    server = InProcessServer(constant, api_keys_file=str(path))
    assert_error(server.get("/metrics"), 401, "UNAUTHENTICATED")
    assert_error(server.get("/metrics", **{"X-API-Key": issued["score"]}), 403, "PERMISSION_DENIED", "'read'")
    samples = scrape(server, **{"X-API-Key": issued["read"]})
    assert total(samples, "scoring_server_model_load_duration_seconds_count") == 1


def test_the_metrics_port_app_serves_metrics_only_behind_the_same_keys(constant, keys):
    path, issued = keys
    server = InProcessServer(constant, api_keys_file=str(path), metrics_port=free_port())
    assert_error(server.get("/metrics", **{"X-API-Key": issued["read"]}), 404, "ENDPOINT_NOT_FOUND")
    port = metrics_port_app(server.app).test_client()
    read = {"X-API-Key": issued["read"]}
    assert port.get("/metrics").status_code == 401
    assert port.get("/metrics", headers={"X-API-Key": issued["score"]}).status_code == 403
    assert b"scoring_server_model_load_duration_seconds_count" in port.get("/metrics", headers=read).data
    for path_ in ("/invocations", "/ping", "/other"):
        answer = port.get(path_, headers=read)
        assert answer.status_code == 404 and answer.json["error_code"] == "ENDPOINT_NOT_FOUND"


def test_the_metrics_port_speaks_tls_with_the_servers_certificate(constant, tmp_path):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    port = free_port()
    server = InProcessServer(constant, metrics_port=port, certfile=str(tmp_path / "cert.pem"),
                             keyfile=str(tmp_path / "key.pem"))
    metrics_server = serve_metrics_port(server.app)
    try:
        with socket.create_connection(("127.0.0.1", port)):  # a client that never shakes hands blocks nobody
            response = requests.get(f"https://127.0.0.1:{port}/metrics", verify=str(tmp_path / "ca.pem"), timeout=10)
        assert response.status_code == 200 and "scoring_server_model_load_duration_seconds" in response.text
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()


def test_the_metrics_port_answers_requests_it_cannot_parse_in_json(constant):
    port = free_port()
    server = InProcessServer(constant, metrics_port=port)
    metrics_server = serve_metrics_port(server.app)
    try:
        for garbage in (b"GARBAGE\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n"):
            status, headers, body = raw_exchange(port, garbage)
            assert 400 <= status < 600 and headers["content-type"] == "application/json", body
            answer = json.loads(body)
            assert answer["error_code"] == "BAD_REQUEST" and answer["request_id"] == headers["x-request-id"]
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()


# --- a real server: sums over workers ---------------------------------------------------------

def score_concurrently(server: RunningServer, bodies: list[dict]) -> list[requests.Response]:
    """Each body on a connection of its own, 8 at a time (so that both workers take some)."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(server.post, bodies))


class Traffic:
    """What a test sent and what was answered: the totals a server's metrics must show."""

    def __init__(self) -> None:
        self.succeeded = self.failed = self.rows = 0
        self.pids: Counter[int] = Counter()

    def send(self, server: RunningServer, successes: int, failures: int) -> None:
        bodies = [rows(1.0, 2.0)] * successes + [rows(-1.0)] * failures
        for response in score_concurrently(server, bodies):
            if response.status_code == 200:
                self.succeeded += 1
                self.rows += 2
                self.pids.update(set(response.json()["predictions"]))
            else:
                assert_error(response, 400, "BAD_REQUEST", "evaluating the model")
                self.failed += 1

    def spread(self, server: RunningServer, workers: set[int]) -> None:
        """Send until each of ``workers`` has answered (bounded)."""
        for _ in range(40):
            if workers <= set(self.pids):
                return
            self.send(server, 16, 2)
        raise AssertionError(f"the workers {workers} did not all answer: {self.pids}")

    @property
    def answered(self) -> int:
        return self.succeeded + self.failed

    def check(self, samples: list) -> None:
        assert total(samples, "scoring_server_requests_total") == self.answered
        assert total(samples, "scoring_server_requests_total", outcome="success", status="200") == self.succeeded
        assert total(samples, "scoring_server_requests_total", outcome="client_error", status="400") == self.failed
        assert total(samples, "scoring_server_request_duration_seconds_count") == self.answered
        assert total(samples, "scoring_server_rows_total", model="pids") == self.rows
        assert total(samples, "scoring_server_http_requests_total", endpoint="scoring.invocations") == self.answered


def held_request(server: RunningServer, hold_file: Path) -> tuple[int, threading.Thread]:
    """A request the model holds in one worker; that worker's pid."""
    def send() -> None:
        try:
            server.post(rows(5000.0))
        except requests.RequestException:
            pass  # its worker is killed under it

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not hold_file.exists() or not hold_file.read_text():
        assert time.monotonic() < deadline, "the model never held the request"
        time.sleep(0.02)
    return int(hold_file.read_text()), thread


def wait_for_workers(master: int, count: int, gone: int | None = None) -> set[int]:
    """The master's workers once there are ``count`` of them, ``gone`` not among them."""
    deadline = time.monotonic() + 30
    while True:
        pids = set(worker_pids(master))
        if len(pids) == count and gone not in pids:
            return pids
        assert time.monotonic() < deadline, f"gunicorn has workers {pids}, not {count} without {gone}"
        time.sleep(0.05)


def multiprocess_directory(pid: int) -> Path:
    """The server's multiprocess directory, as mapped by one of its processes."""
    match = re.search(r"(/\S*scoring-server-metrics-[^/\s]+)/", Path(f"/proc/{pid}/maps").read_text())
    assert match, f"process {pid} maps no multiprocess file"
    return Path(match[1])


class MetricsPort:
    """The --metrics-port endpoint of a RunningServer (the master answers it: scrapes are not in flight)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(self.url + path, headers=headers, timeout=30)


def test_sums_over_workers_stay_exact_when_a_worker_is_killed_and_replaced(pid_model, tmp_path):
    hold_file = tmp_path / "held-by"
    metrics_port = free_port()
    server = RunningServer(pid_model, "--metrics-port", str(metrics_port), workers=2,
                           env={"PID_MODEL_HOLD_FILE": str(hold_file)})
    metrics = MetricsPort(metrics_port)
    try:
        master = server.process.pid
        directory = multiprocess_directory(master)
        assert_error(server.get("/metrics"), 404, "ENDPOINT_NOT_FOUND")  # not on the scoring port
        workers = wait_for_workers(master, 2)
        traffic = Traffic()
        traffic.spread(server, workers)
        assert all(traffic.pids[pid] > 0 for pid in workers)
        traffic.check(scrape(metrics))

        victim, held = held_request(server, hold_file)
        samples = scrape(metrics)
        assert total(samples, "scoring_server_requests_in_flight") == 1
        assert label_values(samples, "scoring_server_models_loaded", "pid") == {str(pid) for pid in workers}
        os.kill(victim, signal.SIGKILL)
        held.join(timeout=30)
        survivors = wait_for_workers(master, 2, gone=victim)
        traffic.send(server, 20, 3)
        samples = scrape(metrics)
        traffic.check(samples)
        assert total(samples, "scoring_server_requests_in_flight") == 0
        deadline = time.monotonic() + 20
        while label_values(samples, "scoring_server_models_loaded", "pid") != {str(pid) for pid in survivors}:
            assert time.monotonic() < deadline, label_values(samples, "scoring_server_models_loaded", "pid")
            time.sleep(0.1)
            samples = scrape(metrics)
        assert total(samples, "scoring_server_model_info", model="pids", flavor="python_function") == 1
        assert directory.is_dir()
    finally:
        server.stop()
    assert not directory.exists()


def test_a_metrics_port_in_use_stops_the_server_with_the_reason(pid_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="Cannot serve /metrics on the metrics port: .*in use"):
            RunningServer(pid_model, "--metrics-port", str(taken.getsockname()[1]), workers=1)


@pytest.mark.parametrize("multiprocess", [False, True], ids=["in_memory", "multiprocess_files"])
def test_fast_series_write_what_the_public_methods_would(multiprocess, tmp_path, monkeypatch):
    """The request path updates prometheus_client's values directly (metrics.fast_series), and in
    multiprocess mode writes them in place in the process's file: the numbers must be those of the
    public methods, bucket bounds included (a value equal to a bound falls in it), or a
    prometheus_client upgrade has changed what we rely on."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
    from prometheus_client.multiprocess import MultiProcessCollector

    from scoring_server.monitoring.metrics import fast_series
    from scoring_server.monitoring.multiprocess import ENV, process_id

    def observed(fast: bool) -> list:
        directory = tmp_path / ("fast" if fast else "public")
        directory.mkdir()
        if multiprocess:
            monkeypatch.setenv(ENV, str(directory))
            monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(process_identifier=process_id))
        registry = CollectorRegistry()
        counter = Counter("c", "c", ["m"], registry=registry).labels("a")
        histogram = Histogram("h_seconds", "h", ["m"], buckets=(0.001, 0.01, 1.0), registry=registry).labels("a")
        gauge = Gauge("g", "g", registry=registry, multiprocess_mode="livesum")
        for amount in [0.0005, 0.001, 0.0011, 0.01, 0.5, 1.0, 7.0]:
            (fast_series(histogram) if fast else histogram).observe(amount)
            (fast_series(counter) if fast else counter).inc(3)
        (fast_series(gauge) if fast else gauge).inc(2)
        (fast_series(gauge).inc(-1) if fast else gauge.dec())
        collected = MultiProcessCollector(None, str(directory)).collect() if multiprocess else registry.collect()
        return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                      for family in collected for s in family.samples if not s.name.endswith("_created"))

    public = observed(fast=False)
    assert len(public) == 8 and observed(fast=True) == public
