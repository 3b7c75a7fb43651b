"""Request IDs: every answer carries ``X-Request-ID`` (the client's when well-formed, else a new one),
error bodies carry the same ID, and a model's error is logged with its traceback and the ID.

In-process (Flask's test client) for the app; a real server for what the worker and the log
format of ``scoring-server serve`` add.
"""
from __future__ import annotations

import logging
import re
import textwrap
import threading
from pathlib import Path

import pytest

from flavors.python_function import save_model
from flavors.signature import infer_signature
from scoring_server.monitoring import BatchEvent
from scoring_server.monitoring.request_ids import RequestIdFormatter, accepted_request_id
from scoring_server.security.keys import create_key

from ..conftest import InProcessServer, RunningServer, constant_model

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
NEW_ID = re.compile(r"[0-9a-f]{32}")

SLEEPY_MODEL = textwrap.dedent('''
    import time

    from flavors.python_model import PythonModel, set_model


    class Sleepy(PythonModel):
        """Sleeps the largest x seconds, then answers x; refuses a negative x."""

        def predict(self, context, model_input, params=None):
            x = model_input["x"]
            if (x < 0).any():
                raise ValueError(f"negative x: {x.min()}")
            time.sleep(float(x.max()))
            return x.to_numpy()


    set_model(Sleepy())
''')


def sleepy_model(root: Path) -> Path:
    """A model of one column ``x`` that sleeps ``max(x)`` seconds and raises ValueError for a negative x."""
    import pandas as pd

    (root / "sleepy_model.py").write_text(SLEEPY_MODEL)
    example = pd.DataFrame({"x": [0.0]})
    save_model(root / "model", python_model=str(root / "sleepy_model.py"), input_example=example,
               signature=infer_signature(example))
    return root / "model"


def x_rows(*values: float) -> dict:
    return {"dataframe_split": {"columns": ["x"], "data": [[value] for value in values]}}


@pytest.fixture(scope="module")
def constant(tmp_path_factory) -> Path:
    return constant_model(tmp_path_factory.mktemp("constant") / "m", 1.0)


@pytest.fixture(scope="module")
def app(constant) -> InProcessServer:
    return InProcessServer(constant)


@pytest.fixture(scope="module")
def sleepy(tmp_path_factory) -> Path:
    return sleepy_model(tmp_path_factory.mktemp("sleepy"))


def test_each_request_gets_a_new_id_when_the_client_sends_none(app):
    ids = [app.post(ROW).headers["X-Request-ID"] for _ in range(20)]
    assert all(NEW_ID.fullmatch(request_id) for request_id in ids), ids
    assert len(set(ids)) == 20


@pytest.mark.parametrize("sent", ["abc", "a" * 128, "2f1c0e4e-6d0c-4a55-9d7e-5b0f0e6f8a11", "trace:span.1_2-3"])
def test_a_well_formed_client_id_is_kept(app, sent):
    assert app.post(ROW, **{"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["a" * 129, "", "two words", 'quote"d', "back\\slash", "ünïcode", "a,b", "a\tb"])
def test_a_malformed_client_id_is_replaced_never_echoed(app, sent):
    response = app.post(ROW, **{"X-Request-ID": sent})
    assert response.status_code == 200
    assert NEW_ID.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize("sent", ["a\r\nX-Injected: 1", "line\nbreak", "nul\x00"])
def test_an_id_with_control_characters_is_replaced(sent):
    # Flask's test client refuses such headers before they reach the app: the function the app uses says it.
    assert NEW_ID.fullmatch(accepted_request_id(sent))


def errors_by_path(constant: Path, keys_file: Path, keys: dict[str, str]) -> dict[str, object]:
    server = InProcessServer(constant, api_keys_file=str(keys_file), max_request_bytes=1000)
    scorer = {"Authorization": f"Bearer {keys['scorer']}"}
    return {
        "400": server.post("not json", **scorer),
        "401": server.post(ROW),
        "403": server.get("/version", **scorer),
        "404": server.get("/nowhere", **scorer),
        "405": server.get("/invocations", **scorer),
        "413": server.post({"dataframe_split": {"columns": ["a"], "data": [[1.0]] * 500}}, **scorer),
    }


@pytest.fixture(scope="module")
def keyed_errors(constant, tmp_path_factory):
    keys_file = tmp_path_factory.mktemp("keys") / "keys.json"
    keys = {"scorer": create_key(keys_file, "scorer", ["score"])[0]}
    return errors_by_path(constant, keys_file, keys)


@pytest.mark.parametrize("status", ["400", "401", "403", "404", "405", "413"])
def test_error_bodies_carry_the_id_of_their_header(keyed_errors, status):
    response = keyed_errors[status]
    assert response.status_code == int(status), response.text
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(body["request_id"])
    assert set(body) == {"error_code", "message", "request_id"}


def test_a_refused_request_keeps_the_clients_id(constant, tmp_path):
    keys_file = tmp_path / "keys.json"
    create_key(keys_file, "reader", ["read"])
    response = InProcessServer(constant, api_keys_file=str(keys_file)).post(ROW, **{"X-Request-ID": "mine-1"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == response.json()["request_id"] == "mine-1"


def test_an_unexpected_500_carries_the_id_and_logs_it(app, monkeypatch, caplog):
    def broken(body):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("scoring_server.routes.scoring.select_scorer", broken)
    caplog.handler.setFormatter(RequestIdFormatter("%(levelname)s %(name)s: %(message)s"))
    with caplog.at_level(logging.ERROR, logger="scoring_server"):
        response = app.post(ROW, **{"X-Request-ID": "bug-500"})
    assert response.status_code == 500
    assert response.json() == {"error_code": "INTERNAL_ERROR", "message": "Internal server error.",
                               "request_id": "bug-500"}
    assert "scoring_server.error_handlers: Unhandled error [request_id=bug-500]\nTraceback" in caplog.text
    assert "RuntimeError: a bug of ours" in caplog.text


def test_a_model_error_is_logged_with_its_traceback_and_the_request_id(sleepy, caplog):
    server = InProcessServer(sleepy)
    caplog.handler.setFormatter(RequestIdFormatter("%(levelname)s %(name)s: %(message)s"))
    with caplog.at_level(logging.WARNING, logger="scoring_server"):
        response = server.post(x_rows(-1.0))
    assert response.status_code == 400 and response.json()["error_code"] == "BAD_REQUEST"
    request_id = response.headers["X-Request-ID"]
    [record] = [r for r in caplog.records if r.name == "scoring_server.error_handlers"]
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert (f"The model raised ValueError: negative x: -1.0 [request_id={request_id}]\nTraceback" in caplog.text)
    assert 'sleepy_model.py", line' in caplog.text  # the model's own frame


def test_batched_model_errors_are_logged_with_each_requests_own_id(sleepy, caplog):
    """With batching, the model is called on the batching thread, which has no request: each
    request's error is still logged on its own thread, with its own ID."""
    server = InProcessServer(sleepy, threads=4, batching="on", max_batch_time_ms=100)
    batches = []
    server.app.extensions["observers"].add(lambda event: batches.append(event) if type(event) is BatchEvent else None)
    caplog.handler.setFormatter(RequestIdFormatter("%(message)s"))
    barrier = threading.Barrier(4)
    answers = {}

    def failing(i: int) -> None:
        barrier.wait()
        answers[i] = server.post(x_rows(-1.0 - i), **{"X-Request-ID": f"req-{i}"})

    with caplog.at_level(logging.WARNING, logger="scoring_server"):
        threads = [threading.Thread(target=failing, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert batches, "the requests were not predicted by the batcher"
    assert {i: answer.status_code for i, answer in answers.items()} == {i: 400 for i in range(4)}
    lines = sorted(line for line in caplog.text.splitlines() if line.startswith("The model raised"))
    assert lines == [f"The model raised ValueError: negative x: {-1.0 - i} [request_id=req-{i}]" for i in range(4)]


def test_a_served_model_error_is_logged_with_its_traceback_and_the_request_id(sleepy):
    server = RunningServer(sleepy, workers=1)
    try:
        response = server.post(x_rows(-2.0), **{"X-Request-ID": "quote-me-42"})
        assert response.status_code == 400
        assert response.headers["X-Request-ID"] == response.json()["request_id"] == "quote-me-42"
    finally:
        output = server.stop()
    line = "scoring_server.error_handlers: The model raised ValueError: negative x: -2.0 [request_id=quote-me-42]\n"
    assert line + "Traceback (most recent call last):" in output, output[-3000:]
    assert 'sleepy_model.py", line' in output[output.index(line):]  # the model's own frame


def test_new_ids_differ_across_forked_workers_and_ignore_a_models_random_seed():
    import os
    import random

    from scoring_server.monitoring.request_ids import new_request_id

    def child_id() -> str:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a forked worker
            os.write(write, new_request_id().encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read) as pipe:
            return pipe.read()

    ids = {child_id(), child_id(), new_request_id()}
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)
    random.seed(7)
    first = new_request_id()
    random.seed(7)
    assert new_request_id() != first
