"""Payload capture: sampled requests and their predictions written to rotated JSON Lines or
Parquet files by a background writer, which never fails or slows a request."""
from __future__ import annotations

import errno
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LogisticRegression

from flavors.signature import infer_signature
from flavors.sklearn import save_model
from scoring_server.encoding import encode_predictions
from scoring_server.monitoring import capture
from scoring_server.monitoring.capture import Capture, CaptureFiles, CaptureOutcomes, JsonLinesSink, ParquetSink

from ..conftest import FIXTURES, InProcessServer, RunningServer, constant_models, worker_pids

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
SPLIT = {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}


def capturing(model_dir: Path, captures: Path, **overrides) -> InProcessServer:
    return InProcessServer(model_dir, capture_dir=str(captures), capture_fraction=1.0, **overrides)


def written(server: InProcessServer) -> None:
    """Everything the app captured so far, on disk (its writer closes its files)."""
    server.app.extensions["payload_capture"].close()


def capture_files(captures: Path, suffix: str = ".jsonl") -> list[Path]:
    return sorted(captures.rglob(f"*{suffix}"))


def records(captures: Path) -> list[dict]:
    lines = [line for path in capture_files(captures) for line in path.read_text().splitlines()]
    return sorted((json.loads(line) for line in lines), key=lambda record: record["time"])


def metric(server, name: str, **labels: str) -> float:
    """A sample of the server's /metrics (0 when it has none)."""
    return sample(text_string_to_metric_families(server.get("/metrics").text), name, **labels)


def sample(families, name: str, **labels: str) -> float:
    for family in families:
        for each in family.samples:
            if each.name == name and each.labels == labels:
                return each.value
    return 0.0


def column_capture(i: int, rows: int, predictions: int | None = None) -> Capture:
    """Request ``r{i}`` at second ``i``: ``rows`` rows of one column ``a`` (the fast path's matrix)."""
    return Capture(float(i), f"r{i}", "m", None, "dataframe_split", ("a",), np.full((rows, 1), i),
                   np.zeros(rows if predictions is None else predictions))


@pytest.fixture(scope="module")
def typed_model(tmp_path_factory) -> Path:
    """A model of long, string and datetime columns (the general, DataFrame path), predicting 1.5."""
    frame = pd.DataFrame({"n": [1, 2], "s": ["x", "y"], "d": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    model = DummyRegressor(strategy="constant", constant=1.5).fit(np.zeros((2, 1)), [0, 0])
    path = tmp_path_factory.mktemp("typed") / "typed"
    save_model(model, path, serialization_format="skops", signature=infer_signature(frame, np.array([1.5, 1.5])))
    return path


@pytest.fixture(scope="module")
def tensor_model(tmp_path_factory) -> Path:
    """A model with a tensor signature: its requests are ``inputs``, not tables."""
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path_factory.mktemp("tensor") / "tensor"
    save_model(model, path, serialization_format="skops", signature=infer_signature(X[:3], model.predict(X[:3])))
    return path


def test_each_successful_request_is_captured_with_its_facts(tmp_path):
    server = capturing(FIXTURES / "iris", tmp_path)
    before = time.time()
    answers = [server.post(SPLIT), server.post({"dataframe_records": [dict(zip(COLUMNS, ROWS[1]))]}),
               server.post({"dataframe_split": {"columns": ["x"], "data": [[1]]}})]
    written(server)
    assert [answer.status_code for answer in answers] == [200, 200, 400]
    captured = records(tmp_path)
    assert len(captured) == 2  # the refused request is not captured
    for record, answer in zip(captured, answers):
        assert before <= datetime.fromisoformat(record["time"]).timestamp() <= time.time()
        assert record["request_id"] == answer.headers.get("X-Request-ID")
        assert (record["model"], record["version"]) == ("iris", None)
        assert record["predictions"] == answer.json()["predictions"]
    assert captured[0]["inputs"] == SPLIT
    assert captured[1]["inputs"] == {"dataframe_split": {"columns": COLUMNS, "data": [ROWS[1]]}}
    assert metric(server, "scoring_server_captured_total", model="iris") == 2


@pytest.mark.parametrize("model", ["iris", "typed_model", "tensor_model"])
def test_a_captured_request_replays_to_the_same_predictions(tmp_path, request, model):
    model_dir = FIXTURES / "iris" if model == "iris" else request.getfixturevalue(model)
    body = {
        "iris": {"dataframe_records": [dict(zip(COLUMNS, row)) for row in ROWS]},
        "typed_model": {"dataframe_split": {"columns": ["n", "s", "d"],
                                            "data": [[1, "a", "2024-01-03"], [2, None, "2024-01-04T10:00:00"]]}},
        "tensor_model": {"instances": ROWS},
    }[model]
    server = capturing(model_dir, tmp_path)
    answer = server.post(body)
    written(server)
    (record,) = records(tmp_path)
    replayed = server.post(record["inputs"])
    assert answer.status_code == replayed.status_code == 200
    assert replayed.json() == answer.json() == {"predictions": record["predictions"]}


def test_requests_are_not_captured_at_fraction_zero(tmp_path):
    server = InProcessServer(FIXTURES / "iris", capture_dir=str(tmp_path), capture_fraction=0.0)
    assert all(server.post(SPLIT).status_code == 200 for _ in range(20))
    written(server)
    assert list(tmp_path.rglob("*.*")) == []


def test_each_model_of_a_catalog_has_its_folder(tmp_path):
    server = InProcessServer(None, model_root=str(constant_models(tmp_path / "models", 2)),
                             capture_dir=str(tmp_path / "captures"), capture_fraction=1.0)
    for name in ("m0", "m1", "m1"):
        assert server.post({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}},
                           **{"X-Model-Name": name}).status_code == 200
    written(server)
    today = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    assert {path.parent.relative_to(tmp_path / "captures").as_posix() for path in capture_files(tmp_path)} == {
        f"m0/{today}", f"m1/{today}"}
    assert [(record["model"], record["predictions"]) for record in records(tmp_path)] == [
        ("m0", [0.0]), ("m1", [1.0]), ("m1", [1.0])]


def test_parquet_has_one_row_per_scored_row(tmp_path, typed_model):
    server = capturing(typed_model, tmp_path, capture_format="parquet")
    answers = [server.post({"dataframe_split": {"columns": ["n", "s", "d"],
                                                "data": [[1, "a", "2024-01-03"], [2, None, "2024-01-04"]]}}),
               server.post({"dataframe_records": [{"n": 3, "s": "c", "d": "2024-01-05"}]})]
    written(server)
    (path,) = capture_files(tmp_path, ".parquet")
    table = pd.read_parquet(tmp_path)  # the whole capture folder, as a user reads it
    assert list(table.columns) == ["time", "request_id", "model", "version", "n", "s", "d", "prediction"]
    assert table["request_id"].tolist() == [answers[0].headers.get("X-Request-ID")] * 2 + [
        answers[1].headers.get("X-Request-ID")]
    assert table["n"].tolist() == [1, 2, 3] and table["s"].tolist()[::2] == ["a", "c"]
    assert table["d"].tolist() == list(pd.to_datetime(["2024-01-03", "2024-01-04", "2024-01-05"]))
    assert table["prediction"].tolist() == [1.5] * 3
    assert str(table["time"].dtype) == "datetime64[us, UTC]"
    assert pd.read_parquet(path).equals(table)


def test_parquet_of_the_fast_path_and_of_tensors(tmp_path, tensor_model):
    iris = capturing(FIXTURES / "iris", tmp_path / "iris", capture_format="parquet")
    tensor = capturing(tensor_model, tmp_path / "tensor", capture_format="parquet")
    assert iris.post(SPLIT).status_code == tensor.post({"inputs": ROWS}).status_code == 200
    written(iris)
    written(tensor)
    assert pd.read_parquet(tmp_path / "iris")[[*COLUMNS, "prediction"]].values.tolist() == [
        [*ROWS[0], 0], [*ROWS[1], 2]]
    tensors = pd.read_parquet(tmp_path / "tensor")
    assert [list(row) for row in tensors["inputs"]] == ROWS and tensors["prediction"].tolist() == [0, 2]


def test_parquet_columns_of_named_outputs_and_clashing_names():
    predictions = pd.DataFrame({"label": ["a", "b"], "score": [0.5, 0.25]})
    inputs = pd.DataFrame({"model": [1, 2], "x": [3.0, 4.0]})
    table = capture.capture_table(Capture(0.0, "id", "m", "1", "dataframe_split", None, inputs, predictions))
    assert table.column_names == ["time", "request_id", "model", "version", "input.model", "x",
                                  "prediction.label", "prediction.score"]
    assert table.to_pydict()["input.model"] == [1, 2] and table.to_pydict()["model"] == ["m", "m"]


def test_a_json_line_keeps_an_llm_payload_and_answers_nan():
    payload = {"messages": [{"role": "user", "content": "hi"}]}
    predictions = np.array([np.nan, 1.0])
    line = capture.capture_line(Capture(0.0, "id", "m", "2", "llm", None, payload, predictions))
    assert line.endswith(b'"predictions":' + encode_predictions(predictions, wrap=False) + b"}\n")
    assert b"NaN" in line
    assert json.loads(line)["inputs"] == payload and json.loads(line)["time"] == "1970-01-01T00:00:00+00:00"


def test_jsonl_files_rotate_by_size_and_hour(tmp_path, monkeypatch):
    outcomes = CaptureOutcomes()
    sink = JsonLinesSink(CaptureFiles(tmp_path, ".jsonl"), 1000, outcomes)
    for i in range(10):
        sink.write([column_capture(i, 2)])
    assert len(capture_files(tmp_path)) > 1
    assert all(path.stat().st_size < 1000 + 400 for path in capture_files(tmp_path))  # past the limit by one line
    monkeypatch.setattr(capture, "time", lambda: time.time() + 3600)
    sink.write([column_capture(10, 1)])
    sink.flush(everything=True)
    assert [record["request_id"] for record in records(tmp_path)] == [f"r{i}" for i in range(11)]
    assert len(capture_files(tmp_path)[-1].read_text().splitlines()) == 1  # a new hour, a new file
    assert sample(outcomes.collect(), "scoring_server_captured_total", model="m") == 11


def test_parquet_files_are_written_past_the_size_limit_and_at_exit(tmp_path):
    outcomes = CaptureOutcomes()
    sink = ParquetSink(CaptureFiles(tmp_path, ".parquet"), 5000, outcomes)
    for i in range(30):
        sink.write([column_capture(i, 10)])
    assert 1 < len(capture_files(tmp_path, ".parquet")) < 30
    sink.flush(everything=True)
    table = pd.read_parquet(tmp_path)
    assert sorted(set(table["request_id"]), key=lambda name: int(name[1:])) == [f"r{i}" for i in range(30)]
    assert len(table) == 300 and list(tmp_path.rglob(".*")) == []


def test_a_full_queue_drops_captures_and_counts_them(tmp_path, monkeypatch):
    monkeypatch.setattr(capture, "QUEUE_SIZE", 3)
    writing, release = threading.Event(), threading.Event()
    write = JsonLinesSink.write

    def slow_write(sink, captures):
        writing.set()
        release.wait(30)
        write(sink, captures)

    monkeypatch.setattr(JsonLinesSink, "write", slow_write)
    server = capturing(FIXTURES / "iris", tmp_path)
    assert server.post(SPLIT).status_code == 200
    assert writing.wait(30)  # the writer holds the first capture; the queue is empty
    assert all(server.post(SPLIT).status_code == 200 for _ in range(3 + 4))
    release.set()
    written(server)
    assert len(records(tmp_path)) == 1 + 3
    assert metric(server, "scoring_server_capture_dropped_total", model="iris", reason="queue_full") == 4
    assert metric(server, "scoring_server_captured_total", model="iris") == 4


@pytest.mark.parametrize("capture_format", ["jsonl", "parquet"])
def test_a_full_disk_drops_captures_and_never_fails_a_request(tmp_path, monkeypatch, caplog, capture_format):
    monkeypatch.setattr(capture, "_open_new", lambda path: open("/dev/full", "wb", buffering=0))  # ENOSPC
    server = capturing(FIXTURES / "iris", tmp_path, capture_format=capture_format)
    with caplog.at_level(logging.WARNING, logger=capture.__name__):
        for _ in range(2):
            assert server.post(SPLIT).json() == {"predictions": [0, 2]}
            written(server)
    assert metric(server, "scoring_server_capture_dropped_total", model="iris", reason="write_error") == 2
    assert metric(server, "scoring_server_captured_total", model="iris") == 0
    warnings = [record for record in caplog.records if record.name == capture.__name__]
    assert len(warnings) == 1  # at most once a minute
    assert "write_error" in warnings[0].message and f"[Errno {errno.ENOSPC}]" in warnings[0].message
    assert list(tmp_path.rglob("*.*")) == []
    monkeypatch.undo()  # room again: captures resume
    assert server.post(SPLIT).status_code == 200
    written(server)
    assert metric(server, "scoring_server_captured_total", model="iris") == 1


def test_a_model_folder_that_cannot_be_made_drops_captures(tmp_path):
    server = capturing(FIXTURES / "iris", tmp_path)
    (tmp_path / "iris").write_text("not a folder")
    assert server.post(SPLIT).status_code == 200
    written(server)
    assert metric(server, "scoring_server_capture_dropped_total", model="iris", reason="write_error") == 1


def test_predictions_that_are_not_one_per_row_are_dropped_from_parquet(tmp_path):
    outcomes = CaptureOutcomes()
    sink = ParquetSink(CaptureFiles(tmp_path, ".parquet"), 5000, outcomes)
    sink.write([column_capture(0, 3, predictions=2)])
    sink.flush(everything=True)
    assert sample(outcomes.collect(), "scoring_server_capture_dropped_total", model="m", reason="unencodable") == 1
    assert list(tmp_path.rglob("*.*")) == []


def test_a_capture_dir_that_cannot_be_made_stops_the_server(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="capture_dir .*file/captures.* cannot be written: Not a directory"):
        InProcessServer(FIXTURES / "iris", capture_dir=str(tmp_path / "file" / "captures"))


def test_a_missing_capture_dir_is_made(tmp_path):
    capturing(FIXTURES / "iris", tmp_path / "new" / "captures")
    assert (tmp_path / "new" / "captures").is_dir()


@pytest.mark.parametrize("capture_format", ["jsonl", "parquet"])
def test_every_request_to_a_real_server_is_captured_by_its_worker(tmp_path, capture_format):
    server = RunningServer(FIXTURES / "iris", "--capture-dir", str(tmp_path), "--capture-fraction", "1",
                           "--capture-format", capture_format, workers=2)
    try:
        deadline = time.monotonic() + 20
        while len(worker_pids(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = set(worker_pids(server.process.pid))
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: server.post(SPLIT), range(40)))
        assert all(answer.status_code == 200 for answer in answers)
        if capture_format == "jsonl":  # written at once, and counted by the worker that wrote it
            deadline = time.monotonic() + 10
            while metric(server, "scoring_server_captured_total", model="iris") < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert metric(server, "scoring_server_captured_total", model="iris") == 40
    finally:
        output = server.stop()
    files = capture_files(tmp_path, "." + capture_format)
    assert {int(path.name.split("-")[1]) for path in files} <= workers, output  # each file named by its worker
    if capture_format == "jsonl":
        captured = [record["request_id"] for record in records(tmp_path)]
    else:
        captured = pd.read_parquet(tmp_path).drop_duplicates("request_id")["request_id"].tolist()
    assert sorted(captured) == sorted(answer.headers["X-Request-ID"] for answer in answers)
