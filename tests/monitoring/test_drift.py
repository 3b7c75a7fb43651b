"""Drift while serving: PSI and KS against hand computations, the rolling window, counts merged
across workers (dead ones included), what is and is not counted, and the issue's test on a real
server: in-distribution rows stay under 0.1, shifted features cross 0.2 and are named."""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scoring_server.config import load_config
from scoring_server.monitoring import ScoringEvent, ServedModelsEvent
from scoring_server.monitoring.drift import (EPSILON, SLICES, DriftMonitor, LocalCounts, SharedCounts, drift_report,
                                             ks_distance, psi)

from ..conftest import InProcessServer, RunningServer, worker_pids
from .drift_models import mixed_rows, numeric_rows, save_mixed_model, save_numeric_model, split


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    return save_mixed_model(tmp_path_factory.mktemp("drift") / "mixed", mixed_rows(2000, seed=0))


@pytest.fixture(scope="module")
def numeric_model(tmp_path_factory):
    return save_numeric_model(tmp_path_factory.mktemp("drift") / "numeric")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def monitor_of(server: InProcessServer, counts=None, clock=None, **overrides) -> DriftMonitor:
    """A drift monitor of ``server``'s app (every request sampled), with its own counts and clock."""
    config = load_config(env={}, overrides={"drift_sample_fraction": 1.0, "drift_min_rows": 100, **overrides})
    return DriftMonitor(server.app, config, counts or LocalCounts(), clock or Clock())


def scored(server: InProcessServer, frame, **fields) -> ScoringEvent:
    """The event of a successful request of ``frame`` to ``server``'s model, as the scoring path reports it."""
    scorer = server.app.extensions["model_slot"].scorer
    inputs = scorer.fast_path.frame_as_matrix(frame) if scorer.fast_path else frame
    return ScoringEvent(scorer.identity.name, scorer.identity.version, "mlflow2", "dataframe_split", len(frame),
                        inputs=inputs, predictions=scorer.predict_now(inputs, None), **fields)


def features(entry: dict) -> dict[str, tuple[float, str]]:
    return {column["feature"]: (column["psi"], column["status"]) for column in entry["features"]}


def test_psi_and_ks_match_a_hand_computation():
    observed, reference = np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.25, 0.75, 0.0, 0.0])
    assert psi(observed, reference) == pytest.approx(0.25 * math.log(2) - 0.25 * math.log(0.5 / 0.75))
    # an empty bin on one side counts as EPSILON, so the index stays finite
    assert psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(
        0.5 * math.log(2) + (EPSILON - 0.5) * math.log(EPSILON / 0.5))
    assert psi(reference, reference) == 0.0
    # KS over non-missing values: CDFs (0.5, 1, 1) and (0.25, 1, 1) once the missing share is set aside
    assert ks_distance(np.array([0.25, 0.25, 0.0]), np.array([0.25, 0.75, 0.0])) == pytest.approx(0.25)
    assert ks_distance(np.array([0.0, 0.0, 0.0]), np.array([0.5, 0.5, 0.0])) is None


def test_in_distribution_rows_stay_ok_and_shifted_ones_are_named(mixed_model):
    server = InProcessServer(mixed_model, drift_sample_fraction=1.0, drift_min_rows=500)
    for seed in range(1, 6):
        assert server.post(split(mixed_rows(200, seed))).status_code == 200
    [entry] = drift_report(server.app)["mixed"]
    assert entry["rows"] == 1000 and entry["status"] == "ok", entry
    assert all(psi_value < 0.1 for psi_value, _ in features(entry).values()), entry
    assert entry["predictions"][0]["psi"] < 0.1

    shifted = InProcessServer(mixed_model, drift_sample_fraction=1.0, drift_min_rows=500)
    assert shifted.post(split(mixed_rows(1000, seed=9, b_shift=3.0, colour_shares=[0.1, 0.3, 0.6]))).status_code == 200
    [entry] = drift_report(shifted.app)["mixed"]
    by_name = features(entry)
    assert by_name["b"][0] >= 0.2 and by_name["d"][0] >= 0.2, entry
    assert by_name["b"][1] == by_name["d"][1] == "alert" == entry["status"]
    assert by_name["a"][0] < 0.1 and by_name["c"][0] < 0.1, entry
    assert next(c for c in entry["features"] if c["feature"] == "d")["ks"] is None  # categorical: no KS
    assert next(c for c in entry["features"] if c["feature"] == "b")["ks"] > 0.3


def test_the_fast_path_matrix_is_read_in_the_signature_column_order(numeric_model):
    server = InProcessServer(numeric_model, drift_sample_fraction=1.0, drift_min_rows=100)
    assert server.app.extensions["model_slot"].scorer.fast_path is not None
    assert server.post(split(numeric_rows(600, seed=3, shifted="y"))).status_code == 200
    [entry] = drift_report(server.app)["numeric"]
    by_name = features(entry)
    assert by_name["y"][1] == "alert" and by_name["y"][0] >= 0.2
    assert {name for name, (_, status) in by_name.items() if status != "ok"} == {"y"}, entry


def test_metrics_export_the_drift_gauges(numeric_model):
    server = InProcessServer(numeric_model, drift_sample_fraction=1.0, drift_min_rows=100)
    assert server.post(split(numeric_rows(50, seed=3, shifted="x"))).status_code == 200
    assert _gauges(server.get("/metrics").text) == {("scoring_server_drift_window_rows", ("numeric", "")): 50.0}
    assert server.post(split(numeric_rows(100, seed=4, shifted="x"))).status_code == 200
    gauges = _gauges(server.get("/metrics").text)
    assert gauges[("scoring_server_drift_window_rows", ("numeric", ""))] == 150.0
    assert gauges[("scoring_server_feature_drift", ("numeric", "", "x"))] >= 0.2
    assert gauges[("scoring_server_feature_drift", ("numeric", "", "w"))] < 0.2
    assert gauges[("scoring_server_feature_ks_distance", ("numeric", "", "x"))] > 0.3
    assert ("scoring_server_prediction_drift", ("numeric", "", "prediction")) in gauges


def test_models_of_a_catalog_are_counted_under_their_served_names(numeric_model, tmp_path):
    import shutil

    shutil.copytree(numeric_model, tmp_path / "root" / "served-name")
    server = InProcessServer(None, model_root=str(tmp_path / "root"), drift_sample_fraction=1.0)
    assert server.post(split(numeric_rows(1000, seed=5)), path="/models/served-name/invocations").status_code == 200
    [entry] = drift_report(server.app)["served-name"]
    assert (entry["rows"], entry["status"]) == (1000, "ok")


def test_only_sampled_successful_requests_of_models_with_a_baseline_count(mixed_model, tmp_path):
    server = InProcessServer(mixed_model)
    monitor = monitor_of(server)
    monitor.observe(ServedModelsEvent((server.app.extensions["model_slot"].scorer.served_model(),)))
    monitor.observe(scored(server, mixed_rows(10, seed=1), status=400, error_code="BAD_REQUEST"))
    monitor.fraction = 0.0
    monitor.observe(scored(server, mixed_rows(10, seed=1)))
    assert monitor.report()["mixed"][0]["rows"] == 0
    monitor.fraction = 1.0
    monitor.observe(ScoringEvent("mixed", None, "mlflow2", inputs={"t": np.zeros(3)}, predictions=np.zeros(3)))
    monitor.observe(scored(server, mixed_rows(10, seed=1)))
    assert monitor.report()["mixed"][0]["rows"] == 10  # tensors skipped, the frame counted

    unbaselined = InProcessServer(save_mixed_model(tmp_path / "plain"))
    other = monitor_of(unbaselined)
    other.observe(scored(unbaselined, mixed_rows(10, seed=1)))
    assert other.report() == {}  # no baseline: nothing to compare, not "no drift"
    assert other._trackers == {("plain", None): None}  # remembered: later requests cost one lookup


def test_the_window_forgets_rows_older_than_its_length(numeric_model):
    server = InProcessServer(numeric_model)
    clock = Clock()
    monitor = monitor_of(server, clock=clock, drift_window_seconds=120, drift_min_rows=100)
    monitor.observe(scored(server, numeric_rows(100, seed=1, shifted="w")))
    clock.now += 60
    monitor.observe(scored(server, numeric_rows(150, seed=2)))
    entry = monitor.report()["numeric"][0]
    assert entry["rows"] == 250 and features(entry)["w"][1] == "alert"
    clock.now += 120 - 120 / SLICES  # the shifted rows' slice has left the window, the others' not
    entry = monitor.report()["numeric"][0]
    assert entry["rows"] == 150 and features(entry)["w"][1] == "ok"
    clock.now += 120
    entry = monitor.report()["numeric"][0]
    assert (entry["rows"], entry["status"]) == (0, "insufficient_data")
    assert features(entry)["w"] == (None, "insufficient_data")
    monitor.observe(scored(server, numeric_rows(100, seed=3)))  # reuses a ring slot: its old counts are gone
    assert monitor.report()["numeric"][0]["rows"] == 100


def test_workers_counts_are_merged_and_survive_their_worker(numeric_model, tmp_path, monkeypatch):
    from scoring_server.monitoring import drift

    server = InProcessServer(numeric_model)
    clock = Clock()
    first, second = scored(server, numeric_rows(70, seed=1)), scored(server, numeric_rows(50, seed=2, shifted="z"))
    worker = monitor_of(server, SharedCounts(tmp_path), clock)
    monkeypatch.setattr(drift.os, "getpid", lambda: 1001)
    worker.observe(first)
    monkeypatch.setattr(drift.os, "getpid", lambda: 1002)  # as after a fork: the tracker opens its own file
    worker.observe(second)
    assert sorted(path.name.split(".")[1] for path in tmp_path.glob("*.counts")) == ["1001", "1002"]

    # another worker, which never loaded the model, reads both files (1001's stays when it dies)
    reader = DriftMonitor(server.app, load_config(env={}, overrides={"drift_min_rows": 100}), SharedCounts(tmp_path),
                          clock)
    one_process = monitor_of(server, LocalCounts(), clock)
    one_process.observe(first)
    one_process.observe(second)
    entry = reader.report()["numeric"][0]
    assert entry["rows"] == 120 and features(entry)["z"][0] > 0.05
    assert reader.report() == worker.report() == one_process.report()


def test_a_real_server_names_the_shifted_features_across_two_workers(mixed_model):
    """The issue's test: in-distribution rows keep every PSI under 0.1; once they have left the
    window, shifted rows push the shifted features over 0.2, named, and the others stay under it."""
    window = 8.0
    server = RunningServer(mixed_model, "--drift-sample-fraction", "1", "--drift-window-seconds", str(window),
                           "--drift-min-rows", "500", workers=2)
    try:
        sent = 0
        for batch in range(10):  # until both workers have counted rows
            sent += _post_concurrently(server, [mixed_rows(50, seed=100 * batch + i) for i in range(8)])
            if sent >= 800 and len(_counting_workers(server)) == 2:
                break
        assert len(_counting_workers(server)) == 2
        gauges = _gauges(server.get("/metrics").text)
        assert gauges[("scoring_server_drift_window_rows", ("mixed", ""))] == sent
        drift = {key[1][2]: value for key, value in gauges.items() if key[0] == "scoring_server_feature_drift"}
        assert set(drift) == {"a", "b", "c", "d"} and max(drift.values()) < 0.1, drift

        time.sleep(window + 0.5)  # the in-distribution rows leave the window
        assert _gauges(server.get("/metrics").text)[("scoring_server_drift_window_rows", ("mixed", ""))] == 0.0
        _post_concurrently(server, [mixed_rows(100, seed=2000 + i, b_shift=3.0, colour_shares=[0.1, 0.3, 0.6])
                                    for i in range(8)])
        gauges = _gauges(server.get("/metrics").text)
        drift = {key[1][2]: value for key, value in gauges.items() if key[0] == "scoring_server_feature_drift"}
        assert drift["b"] >= 0.2 and drift["d"] >= 0.2, drift
        assert drift["a"] < 0.1 and drift["c"] < 0.1, drift
        assert gauges[("scoring_server_prediction_drift", ("mixed", "", "prediction"))] >= 0.2
    finally:
        server.stop()


def _post_concurrently(server: RunningServer, frames: list) -> int:
    """Score ``frames``, each on a connection of its own, all at once; the rows sent."""
    with ThreadPoolExecutor(len(frames)) as pool:
        statuses = list(pool.map(lambda frame: server.post(split(frame)).status_code, frames))
    assert statuses == [200] * len(frames)
    return sum(len(frame) for frame in frames)


def _counting_workers(server: RunningServer) -> set[int]:
    """The workers that have mapped a drift counts file (they have counted rows)."""
    counting = set()
    for pid in worker_pids(server.process.pid):
        try:
            if ".counts" in Path(f"/proc/{pid}/maps").read_text():
                counting.add(pid)
        except OSError:
            continue
    return counting


def _gauges(text: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """The drift samples of a ``/metrics`` page: (name, label values in label-name order) → value."""
    return {(sample.name, tuple(value for _, value in sorted(sample.labels.items(), key=_label_order))): sample.value
            for family in text_string_to_metric_families(text) if "drift" in family.name or "ks_distance" in family.name
            for sample in family.samples}


def _label_order(item: tuple[str, str]) -> int:
    return ["model", "version", "feature", "output"].index(item[0])
