"""The custom-pyfunc fixture (pickled by MLflow, served without MLflow) answers as MLflow did."""
from __future__ import annotations

import pytest

from ..conftest import assert_error

ROW = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0]]}}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"day_of_week": "Tuesday"}, 406.0953097317349),
        (None, 203.04765486586746),
        ({"foo": 1}, 203.04765486586746),
        ({"day_of_week": "Monday", "foo": 1}, 203.04765486586746),
    ],
    ids=["tuesday", "default_monday", "unknown_param_ignored", "known_and_unknown"],
)
def test_params_pick_the_day_model(day_models_app, params, expected):
    payload = dict(ROW, **({"params": params} if params is not None else {}))
    response = day_models_app.post(payload)
    assert response.status_code == 200
    assert response.json() == {"predictions": [expected]}


def test_param_of_wrong_type_is_invalid_parameter(day_models_app):
    response = day_models_app.post(dict(ROW, params={"day_of_week": 5}))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "Invalid parameters found", "day_of_week")


@pytest.mark.parametrize("params", [["Tuesday"], "Tuesday"], ids=["list", "string"])
def test_params_that_are_not_an_object_are_invalid_parameter(day_models_app, params):
    response = day_models_app.post(dict(ROW, params=params))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "'params' must be a JSON object")


def test_model_raising_is_bad_request_without_stack_trace(day_models_app):
    response = day_models_app.post(dict(ROW, params={"day_of_week": "Sunday"}))
    assert_error(response, 400, "BAD_REQUEST", "Encountered an unexpected error while evaluating the model")


def test_saved_serving_input_example_scores(day_models_app, fixtures_dir):
    body = (fixtures_dir / "day_models" / "serving_input_example.json").read_bytes()
    response = day_models_app.post(body)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


def test_llm_style_payload_on_a_column_model_is_invalid_parameter(day_models_app):
    response = day_models_app.post({"messages": [{"role": "user", "content": "hi"}], **ROW})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "missing inputs")
