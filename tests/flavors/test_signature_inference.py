"""Signatures inferred from input examples: the JSON MLflow 3.17.2 writes for the same data.

Each expected value was printed by ``mlflow.types.utils._infer_schema`` / ``_infer_param_schema``
(MLflow 3.17.2); tests/flavors/test_saved_models_load_in_mlflow.py compares whole saves live.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from flavors import load_model
from flavors.mlmodel import read_mlmodel
from flavors.python_model import PythonModel
from flavors.python_function import save_model as save_pyfunc
from flavors.signature import SignatureInferenceError, infer_param_schema, infer_schema
from flavors.sklearn import save_model as save_sklearn


def col(kind, name=None, required=True):
    spec = kind if isinstance(kind, dict) else {"type": kind}
    return {**spec, **({"name": name} if name is not None else {}), "required": required}


def tensor(dtype, shape, name=None):
    return {**({"name": name} if name else {}), "type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}


LONGS = {"type": "array", "items": {"type": "long"}}
INPUT_SCHEMAS = {
    "typed frame": (
        pd.DataFrame({"a": [1, 2], "b": [1.5, 2.5], "c": ["x", "y"], "d": [True, False],
                      "e": np.array([1, 2], dtype=np.int32), "f": np.array([1, 2], dtype=np.float32)}),
        [col("long", "a"), col("double", "b"), col("string", "c"), col("boolean", "d"), col("integer", "e"),
         col("float", "f")]),
    "frame with default labels": (pd.DataFrame([[1.0, 2.0]]), [col("double", 0), col("double", 1)]),
    "frame with missing values": (pd.DataFrame({"a": [1.0, None], "s": ["x", None]}),
                                  [col("double", "a", False), col("string", "s", False)]),
    "bytes, datetimes, lists": (
        pd.DataFrame({"b": [b"ab", b"cd"], "t": pd.to_datetime(["2020-01-01", "2020-01-02"]), "l": [[1, 2], [3]]}),
        [col("binary", "b"), col("datetime", "t"), col(LONGS, "l")]),
    "float matrix": (np.array([[1.0, 2.0], [3.0, 4.0]]), [tensor("float64", [-1, 2])]),
    "3-d float32": (np.zeros((2, 3, 4), dtype=np.float32), [tensor("float32", [-1, 3, 4])]),
    "string array": (np.array(["a", "b"]), [tensor("str", [-1])]),
    "dict of arrays": ({"x": np.array([[1.0, 2.0]]), "y": np.array([1, 2])},
                       [tensor("float64", [-1, 2], "x"), tensor("int64", [-1], "y")]),
    "dict of scalars": ({"a": 1, "b": "x", "c": 1.5, "d": True},
                        [col("long", "a"), col("string", "b"), col("double", "c"), col("boolean", "d")]),
    "dict of lists and objects": (
        {"a": [1, 2], "o": {"k": 1}, "n": [[1, 2]]},
        [col(LONGS, "a"), col({"type": "object", "properties": {"k": {"type": "long", "required": True}}}, "o"),
         col({"type": "array", "items": LONGS}, "n")]),
    "list of strings": (["a", "b"], [col("string")]),
    "list of ints": ([1, 2], [col("long")]),
    "list of records, one key missing": ([{"a": 1, "b": "x"}, {"a": 2}], [col("long", "a"), col("string", "b", False)]),
    "list of lists": ([[1, 2], [3, 4]], [col(LONGS)]),
    "a string": ("hello", [col("string")]),
}


@pytest.mark.parametrize("case", INPUT_SCHEMAS)
def test_input_schema_is_the_one_mlflow_infers(case):
    data, expected = INPUT_SCHEMAS[case]

    assert json.loads(infer_schema(data).to_json()) == expected


def test_a_list_mixing_types_has_no_schema():
    with pytest.raises(SignatureInferenceError, match="mixes types"):
        infer_schema([1, "a"])


def test_param_schema_is_the_one_mlflow_infers():
    params = {"n": 1, "x": 1.5, "s": "s", "b": True, "ns": [1, 2], "t": dt.datetime(2020, 1, 1),
              "i32": np.int32(3), "f32": np.float32(1.5), "arr": np.array([1, 2])}

    assert json.loads(infer_param_schema(params).to_json()) == [
        {"name": "n", "default": 1, "shape": None, "type": "long"},
        {"name": "x", "default": 1.5, "shape": None, "type": "double"},
        {"name": "s", "default": "s", "shape": None, "type": "string"},
        {"name": "b", "default": True, "shape": None, "type": "boolean"},
        {"name": "ns", "default": [1, 2], "shape": [-1], "type": "long"},
        {"name": "t", "default": "2020-01-01T00:00:00", "shape": None, "type": "datetime"},
        {"name": "i32", "default": 3, "shape": None, "type": "integer"},
        {"name": "f32", "default": 1.5, "shape": None, "type": "float"},
        {"name": "arr", "default": [1, 2], "shape": [-1], "type": "long"},
    ]


def test_a_null_param_has_no_schema():
    with pytest.raises(SignatureInferenceError, match="NoneType"):
        infer_param_schema({"p": None})


def signature_of(model_dir):
    section = yaml.safe_load((model_dir / "MLmodel").read_text()).get("signature")
    return section and {key: json.loads(value) if value else value for key, value in section.items()}


FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})


@pytest.fixture(scope="module")
def classifier():
    return LogisticRegression().fit(FRAME, [0, 1, 0, 1])


def test_sklearn_input_example_gives_the_signature_mlflow_saves(tmp_path, classifier):
    """MLflow 3.17.2 wrote exactly this for ``save_model(clf, path, input_example=FRAME.head(2))``."""
    save_sklearn(classifier, tmp_path / "m", input_example=FRAME.head(2))

    assert signature_of(tmp_path / "m") == {
        "inputs": [col("double", "a"), col("double", "b")], "outputs": [col("long")], "params": None}
    assert load_model(str(tmp_path / "m")).predict(FRAME).tolist() == classifier.predict(FRAME).tolist()


def test_sklearn_array_example_gives_tensor_inputs_and_outputs(tmp_path, classifier):
    save_sklearn(classifier, tmp_path / "m", input_example=FRAME.to_numpy()[:2])

    assert signature_of(tmp_path / "m")["inputs"] == [tensor("float64", [-1, 2])]
    assert signature_of(tmp_path / "m")["outputs"] == [tensor("int64", [-1])]


def test_signature_false_saves_none_and_a_given_signature_wins(tmp_path, classifier):
    save_sklearn(classifier, tmp_path / "none", input_example=FRAME.head(2), signature=False)
    save_pyfunc(tmp_path / "given", python_model=Scaler(), input_example=FRAME.head(2),
                signature=read_mlmodel(_saved_scaler(tmp_path / "scaler")).signature)

    assert signature_of(tmp_path / "none") is None
    assert (tmp_path / "none" / "input_example.json").is_file()
    assert signature_of(tmp_path / "given") == signature_of(tmp_path / "scaler")


class Scaler(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input * (params or {}).get("factor", 1)


def _saved_scaler(path):
    save_pyfunc(path, python_model=Scaler(), input_example=(FRAME.head(2), {"factor": 2, "mode": "x"}))
    return path


def test_pyfunc_example_with_params_gives_the_params_schema_and_files_mlflow_writes(tmp_path):
    """As MLflow 3.17.2 saved ``(frame, {"factor": 2, "mode": "x"})`` for the same model."""
    path = _saved_scaler(tmp_path / "m")

    columns = [col("double", "a"), col("double", "b")]
    assert signature_of(path) == {"inputs": columns, "outputs": columns, "params": [
        {"name": "factor", "default": 2, "shape": None, "type": "long"},
        {"name": "mode", "default": "x", "shape": None, "type": "string"}]}
    example = {"columns": ["a", "b"], "data": [[1.0, 0.0], [2.0, 1.0]]}
    assert json.loads((path / "input_example.json").read_text()) == {"inputs": example, "params": {"factor": 2, "mode": "x"}}
    assert json.loads((path / "serving_input_example.json").read_text()) == {
        "dataframe_split": example, "params": {"factor": 2, "mode": "x"}}
    assert yaml.safe_load((path / "MLmodel").read_text())["saved_input_example_info"]["params"] == "true"


def test_a_model_failing_on_its_example_is_saved_without_a_signature(tmp_path, caplog):
    class Failing(PythonModel):
        def predict(self, context, model_input, params=None):
            raise RuntimeError("boom")

    save_pyfunc(tmp_path / "m", python_model=Failing(), input_example=FRAME.head(2))

    assert signature_of(tmp_path / "m") is None
    assert "RuntimeError: boom" in caplog.text
