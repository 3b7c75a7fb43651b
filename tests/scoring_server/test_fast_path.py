"""The numeric fast path never changes an answer: every payload gets the same response (or the
same error) with and without it."""
from __future__ import annotations

import json
import random

import pytest

from flavors import load_model
from scoring_server.decoding import ModelInputs
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
