"""Workers with adaptive batching (on their event loop, or with threads) answer every concurrent
request exactly as one-at-a-time scoring does, bad requests included."""
from __future__ import annotations

import http.client
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from flavors import load_model
from scoring_server.errors import ScoringError
from scoring_server.pipeline import Scorer

from ..conftest import FIXTURES, RunningServer

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def expected_answer(scorer: Scorer, body: str) -> tuple:
    try:
        return 200, json.loads(scorer.score(body.encode(), "application/json"))
    except ScoringError as error:
        return error.status, error.error_code


def actual_answer(server: RunningServer, body: str) -> tuple:
    response = server.post(body)
    payload = response.json()
    return response.status_code, payload if response.status_code == 200 else payload["error_code"]


def iris_bodies(count: int) -> list[str]:
    rng = random.Random(42)
    bodies = []
    for i in range(count):
        rows = [[round(rng.uniform(0, 8), 2) for _ in COLUMNS] for _ in range(rng.choice([1, 1, 2, 5]))]
        if i % 11 == 3:
            rows[0][1] = "abc"  # decoding error
        if i % 13 == 5:
            rows[-1][0] = None  # NaN: the model raises, inside a batch
        bodies.append(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}}))
    return bodies


def assert_concurrent_answers_match(server: RunningServer, scorer: Scorer, bodies: list[str]) -> None:
    with ThreadPoolExecutor(32) as pool:
        actual = list(pool.map(lambda body: actual_answer(server, body), bodies))
    for body, got in zip(bodies, actual):
        assert same_answer(got, expected_answer(scorer, body)), body


def assert_burst_answers_match(server: RunningServer, scorer: Scorer, bodies: list[str], width: int = 32) -> None:
    """On ``width`` kept-alive connections, send a request on each, then read their answers, and
    again: the loop reads them in the same turns, so they meet in batches whatever the speed of
    this client."""
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) for _ in range(width)]
    try:
        for start in range(0, len(bodies), width):
            chunk = bodies[start:start + width]
            for connection, body in zip(connections, chunk):
                connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            for connection, body in zip(connections, chunk):
                response = connection.getresponse()
                payload = json.loads(response.read())
                got = (response.status, payload if response.status == 200 else payload["error_code"])
                assert same_answer(got, expected_answer(scorer, body)), body
    finally:
        for connection in connections:
            connection.close()


def same_answer(got, expected) -> bool:
    """Equal, except that floats may differ in the last bits: a model's vectorized math over a
    batch may sum in another order than over one row (BLAS), never more than that."""
    if isinstance(got, float) and isinstance(expected, float):
        return got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(same_answer(g, e) for g, e in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same_answer(got[k], expected[k]) for k in got)
    return got == expected


def merged_batches(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"Predicted (\d+) requests .* in one call", log)]


def test_sklearn_batches_answer_like_single_requests():
    server = RunningServer(FIXTURES / "iris", "--threads", "16", workers=2, env={"SCORING_SERVER_LOG_LEVEL": "debug"})
    try:
        assert_concurrent_answers_match(server, Scorer(load_model(str(FIXTURES / "iris"))), iris_bodies(400))
    finally:
        log = server.stop()
    assert any(n > 1 for n in merged_batches(log)), "no request was ever merged into a batch"


@pytest.mark.parametrize("threads", ["1", "16"], ids=["event_loop", "threads"])
@pytest.mark.parametrize("batching", ["on", "auto"])
def test_custom_models_batch_only_when_asked_and_never_across_params(batching, threads):
    server = RunningServer(FIXTURES / "day_models", "--threads", threads, "--batching", batching, workers=1,
                           env={"SCORING_SERVER_LOG_LEVEL": "debug"})
    rng = random.Random(7)
    bodies = [json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[rng.random(), 2.0, 3.0]]},
                          "params": {"day_of_week": rng.choice(["Monday", "Tuesday", "Sunday"])}})
              for _ in range(200)]
    try:
        assert_burst_answers_match(server, Scorer(load_model(str(FIXTURES / "day_models"))), bodies)
    finally:
        log = server.stop()
    assert bool(merged_batches(log)) == (batching == "on")
