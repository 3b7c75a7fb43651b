"""Hostile and odd input: always a 4xx JSON answer, never a 500, never a dead worker.

The answers are checked in-process; what only a real server shows (its workers survive, and
gunicorn's handling of a body over the size limit) on real gunicorn servers."""
from __future__ import annotations

import gzip
import json

import pytest
import requests

from ..conftest import FIXTURES, RunningServer, assert_error
from .test_mlflow_observed_iris import COLUMNS, RECORD

ODD_BODIES = {
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "deep_nesting_orjson_accepts": '{"dataframe_split": {"columns": ["a"], "data": %s}}' % ("[" * 1000 + "]" * 1000),
    "llm_deep_nesting": '{"messages": %s}' % ("[" * 900 + "]" * 900),
    "invalid_utf8": b'{"dataframe_records": [{"sepal_length": "\xff"}]}',
    "gzip_not_decoded": gzip.compress(json.dumps({"dataframe_records": [RECORD]}).encode()),
    "split_not_object": json.dumps({"dataframe_split": [1, 2]}),
    "split_rows_wrong_width": json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}}),
    "records_not_list": json.dumps({"dataframe_records": {"a": 1}}),
    "records_of_numbers": json.dumps({"dataframe_records": [1, 2]}),
    "instances_list_of_lists": json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}),
    "inputs_ragged_columns": json.dumps({"inputs": {"sepal_length": [1, 2], "sepal_width": [1]}}),
    "nested_values": json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[[1], {"a": 2}, 1, 0]]}}),
    "empty_body": "",
    "null_body": "null",
}


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_odd_json_bodies_are_4xx_json(iris_app, body):
    response = iris_app.post(body)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= {"error_code", "message"}


@pytest.mark.parametrize("body", ["a,b\n\"unterminated\n", "\x00\x01\x02", ""], ids=["bad_quote", "binary", "empty"])
def test_odd_csv_bodies_are_4xx_json(iris_app, body):
    response = iris_app.post(body, "text/csv")
    assert 400 <= response.status_code < 500, response.text
    assert "error_code" in response.json()


def test_garbage_parquet_is_bad_request(iris_app):
    assert_error(iris_app.post(b"PAR1 not really", "application/vnd.apache.parquet"), 400, "BAD_REQUEST",
                 "Parquet")


def test_utf8_bom_and_utf16_json_are_accepted(iris_app):
    text = json.dumps({"dataframe_records": [RECORD]})
    assert iris_app.post(b"\xef\xbb\xbf" + text.encode()).json() == {"predictions": [0]}
    assert iris_app.post(text.encode("utf-16")).json() == {"predictions": [0]}


def test_duplicate_keys_last_one_wins(iris_app):
    body = '{"dataframe_records": [{"sepal_length": "junk"}], "dataframe_records": [%s]}' % json.dumps(RECORD)
    assert iris_app.post(body).json() == {"predictions": [0]}


def test_body_over_the_size_limit_is_413_json():
    server = RunningServer(FIXTURES / "iris", workers=1, env={"SCORING_SERVER_MAX_REQUEST_BYTES": "1000"})
    try:
        response = server.post(json.dumps({"dataframe_records": [RECORD] * 100}))
        assert response.status_code == 413
        assert response.json()["error_code"] == "BAD_REQUEST"
        # The same body chunked (a generator body: requests sends it with Transfer-Encoding: chunked)
        # is not cut at the limit and scored: it is 413 too.
        body = json.dumps({"dataframe_records": [RECORD] * 100}).encode()
        chunked = requests.post(f"{server.url}/invocations", data=(body[i:i + 500] for i in range(0, len(body), 500)),
                                headers={"Content-Type": "application/json"}, timeout=30)
        assert chunked.status_code == 413
        assert chunked.json()["error_code"] == "BAD_REQUEST"
        small = json.dumps({"dataframe_records": [RECORD] * 3}).encode()
        within = requests.post(f"{server.url}/invocations", data=iter([small[:50], small[50:]]),
                               headers={"Content-Type": "application/json"}, timeout=30)
        assert within.json() == {"predictions": [0, 0, 0]}
    finally:
        server.stop()


def test_workers_survive_a_burst_of_bad_requests(iris_server):
    for body in list(ODD_BODIES.values()) * 3:
        iris_server.post(body)
    for _ in range(10):
        assert iris_server.post({"dataframe_records": [RECORD]}).json() == {"predictions": [0]}
    assert iris_server.get("/ping").status_code == 200
