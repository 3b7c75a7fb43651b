"""The access log: one line per answered request, written by the gunicorn worker (both worker
classes), as JSON or ``key=value`` text, or nothing when off; the answers a worker makes itself
(a malformed request, a request past its deadline) have their line and ID too. Header values,
bodies and query strings are never logged.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from scoring_server.monitoring import access_log
from scoring_server.monitoring.access_log import access_record, in_container, json_line, text_line, utc_now
from scoring_server.workers.base import WorkerAnswer

from ..conftest import RunningServer, constant_model, raw_exchange
from .test_request_ids import sleepy_model, x_rows

ROWS = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0], [3.0, 4.0]]}}
SECRETS = {"Authorization": "Bearer sekrit-bearer-0001", "X-API-Key": "sekrit-api-key-0002"}
ISO_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = ["time", "request_id", "method", "path", "status", "duration_ms", "model", "version", "rows", "bytes_in",
          "bytes_out", "client"]
_TEXT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_text(line: str) -> dict:
    """A text access-log line as the JSON one would be (``-`` is null, numbers are numbers)."""
    return {key: _text_value(value) for key, value in _TEXT_PAIR.findall(line)}


def _text_value(value: str):
    if value == "-":
        return None
    if value.startswith('"') or re.fullmatch(r"-?\d+(\.\d+)?", value):
        return json.loads(value)
    return value


def access_lines(server: RunningServer) -> list[dict]:
    """Every access-log line the server printed so far (JSON or text)."""
    lines = server.output().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")] + \
        [parse_text(line) for line in lines if line.startswith("time=")]


def line_of(server: RunningServer, request_id: str, timeout: float = 5.0) -> dict:
    """The one line of ``request_id`` (written just after its answer was sent: waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in access_lines(server) if line["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, (request_id, found, server.output()[-2000:])
            return found[0]
        time.sleep(0.02)




@pytest.fixture(scope="module")
def constant(tmp_path_factory):
    return constant_model(tmp_path_factory.mktemp("constant") / "m", 7.0)


@pytest.fixture(scope="module", params=["thread", "sync"])
def json_server(request, constant):
    server = RunningServer(constant, "--access-log", "json", "--worker-class", request.param, workers=1)
    yield server
    server.stop()


def assert_recent(line: dict) -> None:
    assert ISO_UTC_MS.fullmatch(line["time"]), line
    logged = datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - logged) < timedelta(seconds=30)


def test_a_scoring_request_has_one_json_line_with_its_facts(json_server):
    body = json.dumps(ROWS)
    response = requests.post(f"{json_server.url}/invocations", data=body, timeout=30,
                             headers={"Content-Type": "application/json", "X-Request-ID": "score-1", **SECRETS})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "score-1"
    line = line_of(json_server, "score-1")
    assert list(line) == FIELDS
    assert_recent(line)
    assert {k: v for k, v in line.items() if k not in ("time", "duration_ms")} == {
        "request_id": "score-1", "method": "POST", "path": "/invocations", "status": 200, "model": "m",
        "version": None, "rows": 2, "bytes_in": len(body), "bytes_out": len(response.content), "client": "127.0.0.1"}
    assert 0 < line["duration_ms"] < 30_000


def test_errors_and_other_routes_have_their_line(json_server):
    bad = json_server.post("{not json", **{"X-Request-ID": "bad-body"})
    ping = json_server.get("/ping?verbose=1", **{"X-Request-ID": "ping-1"})
    missing = json_server.get("/nowhere", **{"X-Request-ID": "missing-1"})
    assert (bad.status_code, ping.status_code, missing.status_code) == (400, 200, 404)
    bad_line = line_of(json_server, "bad-body")
    assert (bad_line["status"], bad_line["model"], bad_line["rows"]) == (400, "m", None)
    assert bad_line["bytes_out"] == len(bad.content)
    ping_line = line_of(json_server, "ping-1")
    assert (ping_line["method"], ping_line["path"], ping_line["status"], ping_line["bytes_in"]) == ("GET", "/ping", 200, 0)
    missing_line = line_of(json_server, "missing-1")
    assert (missing_line["status"], missing_line["path"], missing_line["model"]) == (404, "/nowhere", None)


def test_a_malformed_request_answered_by_the_worker_has_its_id_and_line(json_server):
    status, headers, body = raw_exchange(json_server.port, b"GARBAGE\r\n\r\n")
    assert status == 400
    request_id = headers["x-request-id"]
    assert json.loads(body)["request_id"] == request_id
    line = line_of(json_server, request_id)
    assert (line["status"], line["bytes_out"], line["client"], line["method"]) == (400, len(body), "127.0.0.1", None)


def test_header_values_and_query_strings_are_never_logged(json_server):
    requests.get(f"{json_server.url}/ping?token=sekrit-query-0003", headers={**SECRETS, "X-Request-ID": "secret-1"},
                 timeout=30)
    line_of(json_server, "secret-1")
    output = json_server.output()
    for secret in ("sekrit-bearer-0001", "sekrit-api-key-0002", "sekrit-query-0003"):
        assert secret not in output


def test_text_lines_carry_the_same_fields(constant):
    server = RunningServer(constant, "--access-log", "text", workers=1)
    try:
        body = json.dumps(ROWS)
        response = server.post(body, **{"X-Request-ID": "text-1"})
        line = line_of(server, "text-1")
        raw = next(raw for raw in server.output().splitlines() if "request_id=text-1 " in raw)
    finally:
        server.stop()
    assert raw.startswith("time=") and list(line) == FIELDS
    assert {k: v for k, v in line.items() if k not in ("time", "duration_ms")} == {
        "request_id": "text-1", "method": "POST", "path": "/invocations", "status": 200, "model": "m",
        "version": None, "rows": 2, "bytes_in": len(body), "bytes_out": len(response.content), "client": "127.0.0.1"}
    assert_recent(line)


def test_off_writes_no_access_line(constant):
    server = RunningServer(constant, "--access-log", "off", workers=1)
    try:
        ids = [server.post(ROWS).headers["X-Request-ID"], server.get("/ping").headers["X-Request-ID"]]
        time.sleep(0.3)  # what would have been written after the answers
    finally:
        output = server.stop()
    assert not any(line.startswith(("{", "time=")) for line in output.splitlines()), output
    assert not any(request_id in output for request_id in ids)


@pytest.fixture(scope="module")
def sleepy(tmp_path_factory):
    return sleepy_model(tmp_path_factory.mktemp("sleepy"))


@pytest.mark.parametrize("worker_class", ["thread", "sync"])
def test_a_request_past_its_deadline_has_one_line_with_status_504(sleepy, worker_class):
    server = RunningServer(sleepy, "--access-log", "json", "--request-timeout", "1", "--worker-class", worker_class,
                           workers=1)
    try:
        started = time.monotonic()
        late = server.post(x_rows(1.5), **{"X-Request-ID": f"late-{worker_class}"})
        assert late.status_code == 504 and late.json()["error_code"] == "DEADLINE_EXCEEDED"
        assert late.headers["X-Request-ID"] == late.json()["request_id"] == f"late-{worker_class}"
        line = line_of(server, f"late-{worker_class}")
        assert (line["status"], line["path"], line["bytes_out"]) == (504, "/invocations", len(late.content))
        assert 1000 <= line["duration_ms"] < 2500
        time.sleep(max(1.8 - (time.monotonic() - started), 0))  # the model is done, its answer dropped
        # Answered by the worker's only thread once the late request let go of it: nothing more of that one comes.
        assert server.post(x_rows(0.0), **{"X-Request-ID": "after"}).status_code == 200
        line_of(server, "after")
        assert line_of(server, f"late-{worker_class}") == line
    finally:
        server.stop()


def test_auto_is_json_in_a_container_and_text_elsewhere():
    assert in_container({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, exists=lambda path: False)
    assert in_container({"container": "podman"}, exists=lambda path: False)
    assert in_container({}, exists=lambda path: path == "/.dockerenv")
    assert in_container({}, exists=lambda path: path == "/run/.containerenv")
    assert not in_container({"HOME": "/root"}, exists=lambda path: False)
    assert access_log.resolved_mode("text") == "text" and access_log.resolved_mode("off") == "off"
    assert access_log.resolved_mode("auto") == ("json" if in_container() else "text")


def test_text_values_cannot_forge_a_line():
    record = access_record(WorkerAnswer(400, 10), {"RAW_URI": '/a b"\n{"status": 200}?q=1', "REQUEST_METHOD": "GET",
                                                  "scoring_server.scored": ("m\nx", "1", 3)}, None)
    line = text_line(record).decode()
    assert line.count("\n") == 1 and line.endswith("\n")
    parsed = parse_text(line)
    assert (parsed["path"], parsed["model"], parsed["duration_ms"], parsed["status"]) == \
        ('/a b"\n{"status": 200}', "m\nx", None, 400)
    assert json.loads(json_line(record))["path"] == '/a b"\n{"status": 200}'


def test_a_chunked_body_has_no_declared_length():
    chunked = {"REQUEST_METHOD": "POST", "HTTP_TRANSFER_ENCODING": "chunked"}
    assert access_record(WorkerAnswer(200, 1), chunked, None)["bytes_in"] is None
    assert access_record(WorkerAnswer(200, 1), {"REQUEST_METHOD": "GET"}, None)["bytes_in"] == 0
    assert access_record(WorkerAnswer(200, 1), {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "12"}, None)["bytes_in"] == 12


def test_the_time_is_utc_with_milliseconds():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    stamp = utc_now()
    assert ISO_UTC_MS.fullmatch(stamp)
    logged = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert before <= logged <= datetime.now(timezone.utc)
