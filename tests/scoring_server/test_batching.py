"""Adaptive batching returns exactly what one call per request returns, under concurrency and errors."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from scoring_server.batching import AdaptiveBatcher
from scoring_server.errors import ScoringError


class RecordingModel:
    """Doubles its input rows; refuses any batch that contains a negative value."""

    def __init__(self, output: str = "array") -> None:
        self.calls: list[int] = []
        self.output = output
        self.lock = threading.Lock()

    def __call__(self, data, params):
        with self.lock:
            self.calls.append(len(data))
        values = data.to_numpy() if isinstance(data, pd.DataFrame) else data
        if (values < 0).any():
            raise ValueError("negative input")
        scale = (params or {}).get("scale", 2)
        if self.output == "scalar":
            return float(values.sum())
        if self.output == "frame":
            return pd.DataFrame({"y": values[:, 0] * scale})
        return values[:, 0] * scale


def run_concurrently(batcher: AdaptiveBatcher, inputs: list, params: list | None = None) -> list:
    """Submit every input from its own thread at once; return each result or exception."""
    params = params or [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def submit(i):
        batcher.arriving()
        barrier.wait()
        try:
            return batcher.predict(inputs[i], params[i])
        except Exception as exc:  # the request's own error
            return exc

    with ThreadPoolExecutor(len(inputs)) as pool:
        return list(pool.map(submit, range(len(inputs))))


def arrays(count: int, rows: int = 1) -> list[np.ndarray]:
    return [np.full((rows, 2), i, dtype=float) for i in range(count)]


def test_concurrent_requests_are_merged_and_split_back_in_order():
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=200)
    results = run_concurrently(batcher, arrays(32))
    assert [r.tolist() for r in results] == [[2.0 * i] for i in range(32)]
    assert len(model.calls) < 32 and sum(model.calls) == 32


def test_batches_never_exceed_max_batch_size():
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=8, max_batch_time_ms=200)
    results = run_concurrently(batcher, arrays(24, rows=2))
    assert [r.tolist() for r in results] == [[2.0 * i] * 2 for i in range(24)]
    assert max(model.calls) <= 8


def test_an_error_in_one_request_does_not_fail_the_others():
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=200)
    inputs = arrays(16)
    inputs[5] = np.array([[-1.0, 0.0]])
    results = run_concurrently(batcher, inputs)
    assert isinstance(results[5], ValueError)
    assert [r.tolist() for i, r in enumerate(results) if i != 5] == [[2.0 * i] for i in range(16) if i != 5]


def test_requests_with_different_params_are_not_merged():
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=200)
    params = [{"scale": 2 if i % 2 else 3} for i in range(16)]
    results = run_concurrently(batcher, arrays(16), params)
    assert [r.tolist() for r in results] == [[(2.0 if i % 2 else 3.0) * i] for i in range(16)]


def test_dataframe_inputs_and_outputs_are_split_by_rows():
    model = RecordingModel(output="frame")
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=200)
    frames = [pd.DataFrame({"a": [float(i), float(i)], "b": [0.0, 0.0]}) for i in range(10)]
    results = run_concurrently(batcher, frames)
    for i, result in enumerate(results):
        pd.testing.assert_frame_equal(result, pd.DataFrame({"y": [2.0 * i, 2.0 * i]}))


def test_output_that_cannot_be_split_falls_back_to_one_call_each():
    model = RecordingModel(output="scalar")
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=200)
    assert run_concurrently(batcher, arrays(8)) == [2.0 * i for i in range(8)]


def started(function, *args) -> tuple[threading.Thread, dict]:
    """``function`` running in a thread, and where its result (or exception) will be."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args)
        except Exception as exc:  # handed back to the test
            outcome["result"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_lone_request_is_predicted_without_waiting():
    """The batch window is 10 minutes: a lone request that waited for it would not finish in 10 s."""
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=600_000)
    batcher.arriving()
    thread, outcome = started(batcher.predict, np.ones((1, 2)), None)
    thread.join(timeout=10)
    assert not thread.is_alive() and outcome["result"].tolist() == [2.0]


def test_a_batch_waits_for_a_request_still_decoding_and_goes_when_it_fails():
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=600_000)
    batcher.arriving()
    batcher.arriving()  # a second request is still decoding: the first waits for it
    thread, outcome = started(batcher.predict, np.ones((1, 2)), None)
    thread.join(timeout=0.5)
    assert thread.is_alive() and model.calls == []
    batcher.abandon()  # the second request failed to decode: the batch goes at once
    thread.join(timeout=10)
    assert not thread.is_alive() and outcome["result"].tolist() == [2.0] and model.calls == [1]


def test_close_ends_the_thread_and_later_requests_are_predicted_directly():
    model = RecordingModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_batch_time_ms=5, idle_seconds=3600)
    assert batcher.predict(np.ones((1, 2)), None).tolist() == [2.0]
    thread = batcher._thread
    assert thread is not None and thread.is_alive()
    batcher.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert batcher.predict(np.ones((2, 2)), None).tolist() == [2.0, 2.0] and not batcher.running


def test_an_idle_batcher_ends_its_thread():
    batcher = AdaptiveBatcher(RecordingModel(), max_batch_size=64, max_batch_time_ms=5, idle_seconds=0.01)
    batcher.predict(np.ones((1, 2)), None)
    thread = batcher._thread
    if thread is not None:
        thread.join(timeout=10)
    assert not batcher.running


def test_a_request_waits_at_most_the_wait_timeout():
    release = threading.Event()
    batcher = AdaptiveBatcher(lambda data, params: release.wait(10) and data, max_batch_size=64,
                              max_batch_time_ms=5, wait_timeout=0.05)
    with pytest.raises(ScoringError) as raised:
        batcher.predict(np.ones((1, 2)), None)
    release.set()
    assert raised.value.status == 503 and raised.value.error_code == "TEMPORARILY_UNAVAILABLE"


@pytest.mark.parametrize("data", [{"a": [1]}, np.ones(3)], ids=["dict", "1d_array"])
def test_inputs_that_cannot_be_merged_are_predicted_directly(data):
    calls = []
    batcher = AdaptiveBatcher(lambda d, p: calls.append(d) or "ok", max_batch_size=64, max_batch_time_ms=5)
    batcher.arriving()
    assert batcher.predict(data, None) == "ok" and len(calls) == 1
