"""Write the ONNX fixtures of tests/fixtures/mlflow-models/onnx_* with real ``mlflow.onnx.save_model``.

Run once with MLflow's venv: ``.bench/mlflow/bin/python scripts/flavor_fixtures/onnx.py``. Each
fixture gets an ``expected.json``: the request body, MLflow's own ``pyfunc.load_model(...).predict``
answer to that input (JSON-encoded) and what MLflow's scoring server answers to the body
(``mlflow models serve``'s ``/invocations``), so that tests compare without MLflow.

* ``onnx_regressor``: an MLP regressor (skl2onnx), tensor signature float32 (-1, 4); its 4×64
  first layer (1 KB) is written to a sidecar ``<uuid>.data`` by ``save_as_external_data``.
* ``onnx_classifier``: a logistic regression with ZipMap (label + probability map), column
  signature of 4 doubles.
* ``onnx_multi_io``: an ``onnx.helper`` graph with named inputs ``x`` (-1, 3) and ``scale``
  (-1, 1) and outputs ``hidden_sum`` and ``doubled``; its 3×100 weights sit in a sidecar file.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

# This file is named onnx.py: its directory, first on sys.path, would shadow the onnx package.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import mlflow.onnx  # after the sys.path fix
import mlflow.pyfunc
import numpy as np
import onnx
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc.scoring_server import invocations, predictions_to_json
from mlflow.types import Schema, TensorSpec
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPRegressor

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mlflow-models"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
RNG = np.random.default_rng(17)


def iris() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris()
    return pd.DataFrame(data.data, columns=IRIS_COLUMNS), data.target


def write(name: str, model: onnx.ModelProto, rows, body: dict, **save_kwargs) -> None:
    """Save ``model`` with MLflow, then record MLflow's answers to ``rows`` and to ``body``."""
    path = OUT / name
    shutil.rmtree(path, ignore_errors=True)
    mlflow.onnx.save_model(model, path, **save_kwargs)
    loaded = mlflow.pyfunc.load_model(str(path))
    predicted = _jsonable(loaded.predict(rows))
    served = invocations(json.dumps(body), "application/json", loaded, loaded.metadata.get_input_schema())
    assert served.status == 200, served.response
    expected = {"request": body, "pyfunc_predict": predicted, "served": json.loads(served.response)}
    (path / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    sidecars = [p.name for p in path.iterdir() if p.suffix == ".data"]
    print(f"{name}: {sum(p.stat().st_size for p in path.iterdir())} bytes, sidecar files {sidecars}")


def _jsonable(predictions) -> object:
    """What ``predictions_to_json`` writes under ``predictions``."""
    from io import StringIO

    out = StringIO()
    predictions_to_json(predictions, out)
    return json.loads(out.getvalue())["predictions"]


def regressor() -> None:
    x, y = iris()
    features = x.to_numpy(np.float32)
    model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=17).fit(features, y)
    onx = to_onnx(model, features[:1], target_opset=17)
    rows = features[[0, 60, 120]]
    signature = ModelSignature(Schema([TensorSpec(np.dtype(np.float32), (-1, 4))]),
                               Schema([TensorSpec(np.dtype(np.float32), (-1, 1))]))
    write("onnx_regressor", onx, rows, {"inputs": rows.tolist()}, signature=signature, input_example=rows)


def classifier() -> None:
    x, y = iris()
    model = LogisticRegression(max_iter=500, random_state=17).fit(x.to_numpy(np.float32), y)
    onx = to_onnx(model, x.to_numpy(np.float32)[:1], target_opset=17, options={"zipmap": True})
    rows = x.iloc[[0, 60, 120, 75]].reset_index(drop=True)
    signature = infer_signature(rows)  # no output schema: a probability map has no column type
    body = {"dataframe_split": rows.to_dict(orient="split", index=False)}
    write("onnx_classifier", onx, rows, body, signature=signature, input_example=rows)


def multi_io() -> None:
    weights = RNG.normal(size=(3, 100)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["hidden"]),
            helper.make_node("Relu", ["hidden"], ["relu"]),
            helper.make_node("ReduceSum", ["relu", "axes"], ["summed"], keepdims=1),
            helper.make_node("Mul", ["summed", "scale"], ["hidden_sum"]),
            helper.make_node("Add", ["x", "x"], ["doubled"]),
        ],
        "multi_io",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("hidden_sum", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    rows = {"x": RNG.normal(size=(3, 3)).astype(np.float32), "scale": np.array([[1.0], [0.5], [2.0]], np.float32)}
    signature = ModelSignature(
        Schema([TensorSpec(np.dtype(np.float32), (-1, 3), "x"), TensorSpec(np.dtype(np.float32), (-1, 1), "scale")]),
        Schema([TensorSpec(np.dtype(np.float32), (-1, 1), "hidden_sum"),
                TensorSpec(np.dtype(np.float32), (-1, 3), "doubled")]),
    )
    body = {"inputs": {name: value.tolist() for name, value in rows.items()}}
    write("onnx_multi_io", model, rows, body, signature=signature, input_example=rows)


if __name__ == "__main__":
    regressor()
    classifier()
    multi_io()
