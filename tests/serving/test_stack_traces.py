"""Stack traces stay on the server unless the operator asks for them."""
from __future__ import annotations

from ..conftest import FIXTURES, RunningServer

ROW = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0]]}, "params": {"day_of_week": "Sunday"}}


def test_expose_stack_traces_switch_sends_the_traceback():
    server = RunningServer(FIXTURES / "day_models", "--expose-stack-traces", workers=1)
    try:
        body = server.post(ROW).json()
    finally:
        server.stop()
    assert body["error_code"] == "BAD_REQUEST"
    assert "Traceback" in body["stack_trace"]
    assert "unknown day Sunday" in body["stack_trace"]
