"""The default worker (one thread) answers on its event loop, in greenlets, and batches the
predictions of concurrent requests: every answer equals one-at-a-time scoring, bad requests and
model errors included; a client that does not read its answer holds nothing but its socket."""
from __future__ import annotations

import json
import socket
import textwrap
import time

import pytest

from flavors import load_model
from scoring_server.pipeline import Scorer

from ..conftest import FIXTURES, RunningServer
from .test_batching_http import assert_burst_answers_match, assert_concurrent_answers_match, iris_bodies, merged_batches

BIG_ANSWER_MODEL = textwrap.dedent('''
    from flavors.python_model import PythonModel, set_model


    class Big(PythonModel):
        """Answers each row with a text of model_input["size"] characters."""

        def predict(self, context, model_input, params=None):
            return ["x" * int(size) for size in model_input["size"]]


    set_model(Big())
''')


def test_the_default_worker_batches_concurrent_requests_and_answers_like_single_ones():
    server = RunningServer(FIXTURES / "iris", workers=2, env={"SCORING_SERVER_LOG_LEVEL": "debug"})
    try:
        scorer = Scorer(load_model(str(FIXTURES / "iris")))
        assert_concurrent_answers_match(server, scorer, iris_bodies(300))
        assert_burst_answers_match(server, scorer, iris_bodies(320))
        metrics = server.get("/metrics").text
    finally:
        log = server.stop()
    assert any(n > 1 for n in merged_batches(log)), "no request was ever merged into a batch"
    assert "Using worker: scoring_server.workers.thread.ThreadWorker" in log
    assert "scoring_server_batch_requests_count" in metrics


@pytest.fixture(scope="module")
def big_answer_model(tmp_path_factory):
    import pandas as pd

    from flavors.python_function import save_model

    root = tmp_path_factory.mktemp("big")
    (root / "big_model.py").write_text(BIG_ANSWER_MODEL)
    save_model(root / "model", python_model=str(root / "big_model.py"), input_example=pd.DataFrame({"size": [1]}))
    return root / "model"


def test_a_client_that_does_not_read_its_answer_does_not_hold_the_loop(big_answer_model):
    """Its answer (far larger than the socket buffers) waits in its greenlet; other requests to
    the same, only worker are answered meanwhile, and the reader finally gets every byte."""
    server = RunningServer(big_answer_model, workers=1)
    body = json.dumps({"dataframe_records": [{"size": 40_000_000}]}).encode()
    try:
        with socket.socket() as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", server.port))
            slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            time.sleep(1.0)  # its answer is being written, and stalls
            started = time.monotonic()
            small = server.post({"dataframe_records": [{"size": 3}]})
            assert small.status_code == 200 and small.json() == {"predictions": ["xxx"]}
            assert time.monotonic() - started < 5
            received = 0
            slow.settimeout(30)
            while chunk := slow.recv(1 << 20):
                received += len(chunk)
        assert received > 40_000_000
    finally:
        server.stop()
