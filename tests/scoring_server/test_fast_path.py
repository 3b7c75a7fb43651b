"""The numeric fast path never changes an answer: every payload gets the same response (or the
same error) with and without it."""
from __future__ import annotations

import json
import random

import pytest

from flavors import load_model
from scoring_server.decoding import ModelInputs
from scoring_server.decoding.limits import NO_LIMITS, DecodeLimits
from scoring_server.errors import ScoringError
from scoring_server.pipeline import Scorer

from ..conftest import FIXTURES

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ODD_VALUES = [5.1, 3, 0, -1.5, True, False, None, "2.5", " 4 ", "abc", "nan", [1], {"a": 1}, 1e308, 10**30]


def answer(scorer: Scorer, payload) -> tuple:
    try:
        return ("ok", scorer.score(json.dumps(payload).encode(), "application/json"))
    except ScoringError as error:
        return (error.status, error.error_code, error.message)


def random_payload(rng: random.Random):
    columns = rng.choice([COLUMNS, COLUMNS[::-1], COLUMNS + ["extra"], COLUMNS[:3], ["a", "b", "c", "d"]])
    rows = [[rng.choice(ODD_VALUES) if rng.random() < 0.2 else rng.uniform(0, 8) for _ in columns]
            for _ in range(rng.choice([0, 1, 3]))]
    if rng.random() < 0.1 and rows:
        rows[0] = rows[0][:-1]
    kind = rng.choice(["split", "records", "instances", "inputs", "inputs_scalars"])
    if kind == "split":
        return {"dataframe_split": {"columns": columns, "data": rows}}
    records = [dict(zip(columns, row)) for row in rows]
    if kind in ("records", "instances"):
        return {"dataframe_records" if kind == "records" else "instances": records}
    if kind == "inputs":
        return {"inputs": {c: [row[i] for row in rows if i < len(row)] for i, c in enumerate(columns)}}
    return {"inputs": records[0] if records else {}}


@pytest.fixture(scope="module", params=["iris", "iris_nosig"])
def scorers(request):
    model = load_model(str(FIXTURES / request.param))
    fast, general = Scorer(model), Scorer(model)
    general.inputs = ModelInputs(model.metadata.signature)  # no fast path: the general decoders
    assert fast.fast_path is not None
    return fast, general


def test_random_payloads_get_identical_answers(scorers):
    fast, general = scorers
    rng = random.Random(1234)
    for _ in range(1500):
        payload = random_payload(rng)
        assert answer(fast, payload) == answer(general, payload), payload


def test_fast_path_is_taken_for_plain_numeric_rows(scorers):
    fast, _ = scorers
    payload = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}
    assert fast.fast_path.matrix(payload).tolist() == [[5.1, 3.5, 1.4, 0.2]]
    assert fast.fast_path.matrix({"dataframe_split": {"columns": COLUMNS[::-1], "data": [[1, 2, 3, 4]]}}) is None


def test_no_fast_path_for_custom_models_or_non_double_signatures():
    assert Scorer(load_model(str(FIXTURES / "day_models"))).fast_path is None


CSV_ODD_CELLS = ["", "nan", "NaN", "inf", "-inf", " 4 ", "1_0", "0x10", "abc", '"2.5"', "1e5", "+3", ".5", "5.",
                 "1e400", "9007199254740993", "#1", "True", "1,2"]


def random_csv(rng: random.Random) -> bytes:
    """A CSV body with odd headers, odd cells, ragged rows, blank lines and line endings."""
    columns = rng.choice([COLUMNS, COLUMNS[::-1], COLUMNS + ["extra"], COLUMNS[:3], ['"sepal_length"', *COLUMNS[1:]]])
    rows = [[rng.choice(CSV_ODD_CELLS) if rng.random() < 0.15 else repr(round(rng.uniform(0, 8), 3)) for _ in columns]
            for _ in range(rng.choice([0, 1, 3, 10]))]
    if rows and rng.random() < 0.1:
        rows[0] = rows[0][:-1]
    end = rng.choice(["\n", "\r\n"])
    lines = [",".join(columns), *(",".join(row) for row in rows)]
    if rng.random() < 0.1:
        lines.insert(1, "")
    return (end.join(lines) + rng.choice([end, ""])).encode()


def csv_answer(scorer: Scorer, body: bytes) -> tuple:
    try:
        return ("ok", scorer.score(body, "text/csv"))
    except ScoringError as error:
        return (error.status, error.error_code, error.message)


def test_random_csv_bodies_get_identical_answers(scorers):
    fast, general = scorers
    rng = random.Random(4321)
    taken = 0
    for _ in range(1500):
        body = random_csv(rng)
        assert csv_answer(fast, body) == csv_answer(general, body), body
        taken += fast.fast_path.csv_matrix(body, NO_LIMITS) is not None
    assert taken > 50  # the fast path was taken, not only skipped


def test_csv_over_the_limits_takes_the_general_path_that_words_the_error(scorers):
    fast, _ = scorers
    body = (",".join(COLUMNS) + "\n" + "1,2,3,4\n" * 11).encode()
    assert fast.fast_path.csv_matrix(body, DecodeLimits(max_rows=10)) is None
    assert fast.fast_path.csv_matrix(body, DecodeLimits(max_rows=11)).shape == (11, 4)
