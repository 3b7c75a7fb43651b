"""Write the Keras 3 fixtures with real MLflow: run ONCE with MLflow's venv.

    KERAS_BACKEND=torch .bench/mlflow/bin/python scripts/flavor_fixtures/keras.py

Writes tests/fixtures/mlflow-models/keras_<variant>/ with ``mlflow.keras.save_model`` (backend torch:
TensorFlow is not installed) and beside each an ``expected.json``: the request body used and MLflow's own
answer to it (``mlflow.pyfunc.load_model(...).predict``, encoded as ``mlflow models serve`` encodes it).
MLflow's pyfunc loads these models without TensorFlow only because KERAS_BACKEND is set here: it ignores
the ``keras_backend`` recorded in MLmodel.

* ``keras_regressor``: Dense(4 -> 8 -> 1), a column signature of 4 doubles (``mlflow.keras.save_model``
  accepts only tensor signatures as ``signature=``; a column one comes through ``mlflow_model=``), a
  DataFrame input example; MLflow answers a DataFrame with a column ``0``.
* ``keras_classifier``: Dense(4 -> 8 -> softmax 3), a float32 tensor signature (-1, 4), an ndarray input
  example; MLflow answers the probabilities as an array.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

# This file is called keras.py: its own directory must not shadow the keras package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.models import Model, ModelSignature, infer_signature  # noqa: E402
from mlflow.pyfunc.scoring_server import predictions_to_json  # noqa: E402
from mlflow.types import Schema, TensorSpec  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mlflow-models"
COLUMNS = ["x1", "x2", "x3", "x4"]


def dense(n_out: int, activation: str | None) -> keras.Model:
    keras.utils.set_random_seed(17)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(n_out, activation=activation)])


def rows(n: int) -> np.ndarray:
    return np.random.default_rng(17).normal(size=(n, 4)).round(3)


def expected(path: Path, body: dict, data) -> None:
    """MLflow's pyfunc answer to ``data`` (the decoded ``body``), as its server would encode it."""
    answer = mlflow.pyfunc.load_model(str(path)).predict(data)
    predictions = json.loads(_encode(answer))
    (path / "expected.json").write_text(json.dumps({"request": body, "predictions": predictions}, indent=1))


def _encode(answer) -> str:
    out = io.StringIO()
    predictions_to_json(answer, out)
    return out.getvalue()


def regressor() -> None:
    path = OUT / "keras_regressor"
    model = dense(1, None)
    frame = pd.DataFrame(rows(6), columns=COLUMNS)
    signature = infer_signature(frame, pd.DataFrame(model.predict(frame.values, verbose=0)))
    mlflow.keras.save_model(model, str(path), mlflow_model=Model(signature=signature), input_example=frame.head(3))
    expected(path, {"dataframe_split": {"columns": COLUMNS, "data": frame.values.tolist()}}, frame)


def classifier() -> None:
    path = OUT / "keras_classifier"
    model = dense(3, "softmax")
    values = rows(5)
    data = values.astype(np.float32)
    signature = ModelSignature(Schema([TensorSpec(np.dtype("float32"), (-1, 4))]),
                               Schema([TensorSpec(np.dtype("float32"), (-1, 3))]))
    mlflow.keras.save_model(model, str(path), signature=signature, input_example=data[:3])
    expected(path, {"inputs": values.tolist()}, data)


def main() -> None:
    for name in ("keras_regressor", "keras_classifier"):
        shutil.rmtree(OUT / name, ignore_errors=True)
        (OUT / name).mkdir()  # mlflow.keras.save_model writes the input example before creating the directory
    regressor()
    classifier()


if __name__ == "__main__":
    main()
