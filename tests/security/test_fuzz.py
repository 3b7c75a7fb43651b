"""A bounded schemathesis run against real servers, from their own /openapi.json: bodies that fit
the schemas and bodies that do not. Every answer is below 500, every error is JSON, and no worker
dies."""
from __future__ import annotations

import collections
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from ..conftest import FIXTURES, RunningServer, worker_pids

# Per operation and generation mode; /invocations alone gets 2 × 500 cases.
EXAMPLES = {"/invocations": 500, "/models/{name}/invocations": 200, "/models/{name}": 100}
OTHER_EXAMPLES = 20


def fuzz(server: RunningServer) -> collections.Counter:
    """Send generated cases to every operation of the server's document; count (path, status)."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    seen: collections.Counter = collections.Counter()
    problems: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            examples = EXAMPLES.get(operation.path, OTHER_EXAMPLES)

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case) -> None:
                response = case.call(base_url=server.url, timeout=30)
                seen[(operation.path, response.status_code)] += 1
                problem = _problem(response)
                if problem:
                    problems.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {problem}")

            try:
                send()
            except Unsatisfiable:  # an operation without inputs has no invalid ones
                assert mode is GenerationMode.NEGATIVE
    assert problems == [], problems[:10]
    return seen


def _problem(response) -> str | None:
    """What is wrong with an answer (schemathesis' response: lower-case header names, list values)."""
    if response.status_code >= 500 and response.status_code != 503:
        return "server error"
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if content_type.split(";")[0] != "application/json":
        return f"error is not JSON: {content_type}"
    body = response.json()
    if not isinstance(body, dict) or not {"error_code", "message"} <= set(body):
        return f"error body without error_code and message: {body}"
    if "Traceback" in body["message"] or "/" + "work" in body["message"]:
        return "error message shows a traceback or a path"
    return None


def booted_workers(server: RunningServer, count: int) -> list[int]:
    """The worker pids once all ``count`` have booted (/ping answers as soon as the first has)."""
    deadline = time.monotonic() + 30
    while len(pids := sorted(worker_pids(server.process.pid))) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids) == count, pids
    return pids


@pytest.mark.parametrize(("model", "args"), [
    (FIXTURES / "iris", ()),
    pytest.param(FIXTURES / "day_models", (), marks=pytest.mark.heavy),
    pytest.param(None, ("--model-root", str(FIXTURES), "--default-model", "iris"), marks=pytest.mark.heavy),
], ids=["iris", "day_models_params", "many_models"])
def test_generated_requests_get_no_5xx_only_json_errors_and_no_worker_dies(model, args):
    server = RunningServer(model, *args, workers=2)
    try:
        workers = booted_workers(server, 2)
        seen = fuzz(server)
        assert sorted(worker_pids(server.process.pid)) == workers, "a worker died and was replaced"
        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    finally:
        server.stop()
    assert sum(seen.values()) >= 1000, seen
    statuses = collections.Counter(status for _, status in seen.elements())
    assert statuses[200] > 0 and any(400 <= s < 500 for s in statuses), statuses
    print(f"{sum(seen.values())} cases: {dict(sorted(statuses.items()))}")
