"""Custom models saved with our own save API, scored through the app: output shapes, params, LLM payloads."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from flavors.python_function import save_model
from flavors.signature import ModelSignature, infer_signature

from ..conftest import InProcessServer

ECHO_MODEL = textwrap.dedent('''
    import numpy as np
    import pandas as pd
    from flavors.python_model import PythonModel, set_model


    class Echo(PythonModel):
        """Answers in the shape params["shape"] asks for, to pin down response encoding."""

        def predict(self, context, model_input, params=None):
            shape = params["shape"]
            if isinstance(model_input, dict):          # raw LLM payload
                return {"choices": [{"message": model_input["messages"][-1]}], "temperature": params["shape"]}
            if shape == "frame":
                return model_input.assign(total=model_input.sum(axis=1))
            if shape == "series":
                return model_input["x"] * 2
            if shape == "nan":
                return np.array([np.nan] * len(model_input))
            if shape == "dict":
                return {"rows": len(model_input)}
            return model_input["x"].to_numpy()


    set_model(Echo())
''')


EXAMPLE = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]})
SIGNATURE = infer_signature(EXAMPLE, params={"shape": "array"})


def serve_echo(root, signature):
    code = root / "echo_model.py"
    code.write_text(ECHO_MODEL)
    save_model(root / "model", python_model=str(code), input_example=EXAMPLE, signature=signature)
    return InProcessServer(root / "model")


@pytest.fixture(scope="module")
def echo_app(tmp_path_factory):
    return serve_echo(tmp_path_factory.mktemp("echo"), SIGNATURE)


@pytest.fixture(scope="module")
def chat_app(tmp_path_factory):
    """The same model with only a params schema, as chat models are saved."""
    return serve_echo(tmp_path_factory.mktemp("chat"), ModelSignature(params=SIGNATURE.params))


def score(server, shape, data=((1.0, 3.0), (2.0, 4.0))):
    return server.post({"dataframe_split": {"columns": ["x", "y"], "data": [list(r) for r in data]},
                        "params": {"shape": shape}})


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("array", [1.0, 2.0]),
        ("frame", [{"x": 1.0, "y": 3.0, "total": 4.0}, {"x": 2.0, "y": 4.0, "total": 6.0}]),
        ("series", [{"x": 2.0}, {"x": 4.0}]),
        ("dict", {"rows": 2}),
    ],
)
def test_output_shapes(echo_app, shape, expected):
    assert score(echo_app, shape).json() == {"predictions": expected}


def test_nan_is_written_as_mlflow_writes_it(echo_app):
    assert score(echo_app, "nan").text == '{"predictions": [NaN, NaN]}'


def test_zero_rows_reach_a_model_that_accepts_them(echo_app):
    assert score(echo_app, "array", data=()).json() == {"predictions": []}


def test_llm_payload_is_answered_without_the_wrapper(chat_app):
    response = chat_app.post({"messages": [{"role": "user", "content": "hi"}], "shape": "chat"})
    assert response.status_code == 200, response.text
    assert response.json() == {"choices": [{"message": {"role": "user", "content": "hi"}}], "temperature": "chat"}


def test_llm_payload_on_a_column_signature_is_invalid_parameter(echo_app):
    response = echo_app.post({"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
