"""Stack traces stay on the server unless the operator asks for them."""
from __future__ import annotations

from ..conftest import FIXTURES, InProcessServer

ROW = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0]]}, "params": {"day_of_week": "Sunday"}}


def test_expose_stack_traces_switch_sends_the_traceback():
    body = InProcessServer(FIXTURES / "day_models", expose_stack_traces=True).post(ROW).json()
    assert body["error_code"] == "BAD_REQUEST"
    assert "Traceback" in body["stack_trace"]
    assert "unknown day Sunday" in body["stack_trace"]
