"""Prediction encoding matches MLflow's JSON shapes."""
import json

import numpy as np
import pandas as pd
import pytest

from scoring_server.encoding import encode_predictions
from scoring_server.errors import ScoringError


def decoded(raw, wrap=True):
    return json.loads(encode_predictions(raw, wrap))


@pytest.mark.parametrize(
    "raw, expected",
    [
        (np.array([0, 2]), [0, 2]),
        (np.array([[0.5, 0.5]]), [[0.5, 0.5]]),
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]),
        (pd.Series([1.5, 2.5], name="p"), [{"p": 1.5}, {"p": 2.5}]),
        (pd.Series([1, 2]), [{"0": 1}, {"0": 2}]),
        ({"k": np.array([1, 2])}, {"k": [1, 2]}),
        ([np.int64(3), np.float32(0.5)], [3, 0.5]),
        (7, 7),
        ("text", "text"),
        (np.array(["a", None], dtype=object), ["a", None]),
    ],
    ids=["int_array", "float_matrix", "frame", "named_series", "unnamed_series", "dict_of_arrays",
         "numpy_scalars", "scalar", "string", "object_array"],
)
def test_shapes(raw, expected):
    assert decoded(raw) == {"predictions": expected}


def test_ints_stay_ints_and_floats_stay_floats():
    assert encode_predictions(np.array([1, 2])) == b'{"predictions":[1,2]}'
    assert encode_predictions(np.array([1.0, 2.0])) == b'{"predictions":[1.0,2.0]}'


def test_nan_and_infinity_are_written_like_mlflow():
    body = encode_predictions(np.array([1.0, np.nan, np.inf]))
    assert body == b'{"predictions": [1.0, NaN, Infinity]}'
    assert encode_predictions([float("nan")]) == b'{"predictions": [NaN]}'


def test_bytes_and_datetimes():
    assert decoded([b"\x00\x01", pd.Timestamp("2024-01-02T03:04:05")]) == {"predictions": ["AAE=", "2024-01-02T03:04:05"]}


def test_unwrapped_payload_has_no_predictions_key():
    assert decoded({"choices": []}, wrap=False) == {"choices": []}


def test_unencodable_output_is_a_scoring_error():
    with pytest.raises(ScoringError, match="could not be encoded"):
        encode_predictions(object())


def test_float32_values_are_written_with_a_doubles_digits_as_mlflow_writes_them():
    from scoring_server.encoding import encode_predictions

    assert encode_predictions(np.array([0.1, 2.5], np.float32)) == b'{"predictions":[0.10000000149011612,2.5]}'
    assert encode_predictions({"y": np.array([0.1], np.float16)}) == b'{"predictions":{"y":[0.0999755859375]}}'
    assert encode_predictions(np.float32(0.1)) == b'{"predictions":0.10000000149011612}'
