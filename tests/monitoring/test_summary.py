"""``GET /monitoring``: traffic, latency against the objective, drift and staleness per model, read
from the same merged numbers as /metrics; its scope; and, on a real server, beside /metrics on
``--metrics-port``."""
from __future__ import annotations

import math
import time

import pytest
import requests

from scoring_server.config import load_config
from scoring_server.monitoring.summary import latency, staleness, summarize
from scoring_server.security.keys import create_key

from ..conftest import FIXTURES, InProcessServer, RunningServer, free_port
from .drift_models import numeric_rows, save_numeric_model, split

IRIS_ROW = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                "data": [[5.1, 3.5, 1.4, 0.2]]}}


@pytest.fixture(scope="module")
def numeric_model(tmp_path_factory):
    return save_numeric_model(tmp_path_factory.mktemp("summary") / "numeric")


def test_percentiles_interpolate_within_buckets_like_histogram_quantile():
    # 100 requests: 50 under 1 ms, 40 between 1 and 5 ms, 10 between 5 and 10 ms (cumulative counts).
    buckets = {0.001: 50.0, 0.005: 90.0, 0.01: 100.0, math.inf: 100.0}
    result = latency(buckets, slo_ms=5.0)
    assert result["p50_ms"] == 1.0  # the 50th request is the last of the first bucket
    assert result["p90_ms"] == 5.0
    assert result["p99_ms"] == pytest.approx(9.5)  # 9 of the last bucket's 10, linearly
    assert result["over_slo"] == pytest.approx(0.10)  # exact: the objective is a bucket bound


def test_an_objective_that_is_not_a_bucket_bound_is_not_estimated():
    assert latency({0.001: 5.0, math.inf: 10.0}, slo_ms=2.0)["over_slo"] is None
    assert latency({0.001: 5.0, math.inf: 10.0}, slo_ms=None)["over_slo"] is None


def test_requests_beyond_the_last_bound_report_that_bound():
    assert latency({0.001: 1.0, 10.0: 1.0, math.inf: 10.0}, None)["p99_ms"] == 10000.0


def test_no_requests_give_no_percentiles():
    assert latency({}, 5.0) == {"p50_ms": None, "p90_ms": None, "p99_ms": None, "slo_ms": 5.0, "over_slo": None}


def test_staleness_counts_days_since_creation_against_the_maximum():
    now = 1_800_000_000.0
    assert staleness(now - 10 * 86400, 30, now) == {"created": "2027-01-05T08:00:00Z", "age_days": 10.0,
                                                    "max_age_days": 30, "stale": False}
    assert staleness(now - 31 * 86400, 30, now)["stale"] is True
    assert staleness(now - 31 * 86400, None, now)["stale"] is None  # no maximum configured: not judged
    assert staleness(None, 30, now) == {"created": None, "age_days": None, "max_age_days": 30, "stale": None}


def monitoring_of(server: InProcessServer, **headers) -> dict:
    response = server.get("/monitoring", **headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_model_with_a_baseline_reports_traffic_latency_drift_and_staleness(numeric_model):
    server = InProcessServer(str(numeric_model), latency_slo_ms=250.0, max_model_age_days=30.0,
                             drift_sample_fraction=1.0, drift_min_rows=50)
    for _ in range(3):
        assert server.post(split(numeric_rows(400, seed=1))).status_code == 200
    assert server.post({"dataframe_split": {"columns": ["w"], "data": [["text"]]}}).status_code == 400
    (model,) = monitoring_of(server)["models"]
    assert model["model"] == "numeric" and model["version"] is None and model["flavor"] == "sklearn"
    assert model["traffic"] == {"requests": 4, "client_errors": 1, "server_errors": 0, "error_rate": 0.25,
                                "rows": 1200}
    assert model["latency"]["slo_ms"] == 250.0 and model["latency"]["over_slo"] == 0.0
    assert 0 < model["latency"]["p50_ms"] <= model["latency"]["p99_ms"] <= 250.0
    assert model["drift"]["status"] == "ok" and model["drift"]["rows"] == 1200
    assert {f["feature"] for f in model["drift"]["features"]} == {"w", "x", "y", "z"}
    assert model["staleness"]["stale"] is False and 0 <= model["staleness"]["age_days"] < 1


def test_a_model_without_a_baseline_says_so_rather_than_no_drift():
    server = InProcessServer(str(FIXTURES / "iris"), max_model_age_days=1.0)
    assert server.post(IRIS_ROW).status_code == 200
    (model,) = monitoring_of(server)["models"]
    assert model["drift"] == {"status": "no_baseline", "baseline": False}
    assert model["traffic"]["requests"] == 1 and model["latency"]["over_slo"] is None
    assert model["staleness"]["stale"] is True  # the fixture was saved by MLflow long before today


def test_the_document_is_built_from_the_merged_metric_families():
    from prometheus_client.parser import text_string_to_metric_families

    text = "\n".join([
        '# TYPE scoring_server_requests_total counter',
        'scoring_server_requests_total{model="m",version="2",protocol="mlflow2",format="csv",outcome="success",'
        'status="200"} 8',
        'scoring_server_requests_total{model="m",version="2",protocol="mlflow2",format="csv",'
        'outcome="server_error",status="500"} 2',
        '# TYPE scoring_server_model_created_timestamp_seconds gauge',
        'scoring_server_model_created_timestamp_seconds{model="m",version="2"} 1000',
        '# TYPE scoring_server_model_info gauge',
        'scoring_server_model_info{model="m",version="2",flavor="python_function"} 1',
        'scoring_server_model_info{model="m",version="1",flavor="python_function"} 0',
    ]) + "\n"
    config = load_config(env={}, overrides={"max_model_age_days": 1.0})
    document = summarize(text_string_to_metric_families(text), config, {}, now=1000 + 2 * 86400)
    (model,) = document["models"]  # version 1 is no longer served: not listed
    assert (model["model"], model["version"], model["flavor"]) == ("m", "2", "python_function")
    assert model["traffic"]["error_rate"] == 0.2 and model["traffic"]["server_errors"] == 2
    assert model["staleness"]["age_days"] == 2.0 and model["staleness"]["stale"] is True


def test_monitoring_needs_the_read_scope(tmp_path):
    keys = tmp_path / "keys.json"
    reader, scorer = create_key(keys, "ops", ["read"])[0], create_key(keys, "app", ["score"])[0]
    server = InProcessServer(str(FIXTURES / "iris"), api_keys_file=str(keys))
    assert server.get("/monitoring").status_code == 401
    assert server.get("/monitoring", **{"X-API-Key": scorer}).status_code == 403
    assert monitoring_of(server, **{"X-API-Key": reader})["models"][0]["model"] == "iris"


def test_a_real_server_answers_monitoring_beside_metrics_on_the_metrics_port(numeric_model):
    metrics_port = free_port()
    server = RunningServer(numeric_model, "--metrics-port", str(metrics_port), "--latency-slo-ms", "1000",
                           "--drift-sample-fraction", "1", "--drift-min-rows", "10", workers=2)
    try:
        for seed in range(20):
            assert requests.post(server.url + "/invocations", json=split(numeric_rows(5, seed)), timeout=10).ok
        assert requests.get(server.url + "/monitoring", timeout=10).status_code == 404  # not for scoring clients
        document = _monitoring_until(f"http://127.0.0.1:{metrics_port}/monitoring", rows=100)
    finally:
        server.stop()
    (model,) = document["models"]
    assert model["traffic"]["requests"] == 20 and model["traffic"]["rows"] == 100
    assert model["latency"]["over_slo"] == 0.0 and model["drift"]["rows"] == 100


def _monitoring_until(url: str, rows: int, timeout: float = 10.0) -> dict:
    """/monitoring once the drift window has ``rows`` rows (workers write their counts as they score)."""
    deadline = time.monotonic() + timeout
    while True:
        document = requests.get(url, timeout=10).json()
        if document["models"] and document["models"][0]["drift"].get("rows") == rows or time.monotonic() > deadline:
            return document
        time.sleep(0.1)
