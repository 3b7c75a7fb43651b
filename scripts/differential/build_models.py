"""Write the differential corpus's models with MLflow itself; run by the python of an MLflow venv:

    .bench/mlflow/bin/python scripts/differential/build_models.py OUT_DIR

Each model echoes its input, normalised to JSON-friendly values, so that two servers' predictions
show how each converted the request: one model per signature column type (``double``, ...,
``datetime``: one required column ``x``), ``table`` (``x_double``, ``x_long``, ``x_string``), ``tensor`` (one float32 tensor of shape (-1, 2)) and ``named_tensors`` (``a`` float64 (-1,),
``b`` int64 (-1,)). Standard library, numpy, pandas and mlflow only: the servers load the same
pickles.
"""
from __future__ import annotations

import sys
from pathlib import Path

import mlflow
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec
import numpy as np

COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string", "binary", "datetime")


class Echo(mlflow.pyfunc.PythonModel):
    """Predicts what it was given: per column (or tensor) its dtype and its values as plain JSON."""

    def predict(self, context, model_input, params=None):
        import base64
        import math

        def plain(value):
            if isinstance(value, (bytes, bytearray)):
                return "b64:" + base64.b64encode(value).decode()
            if hasattr(value, "isoformat"):
                return value.isoformat()
            if hasattr(value, "tolist"):
                value = value.tolist()
            if isinstance(value, float) and not math.isfinite(value):
                return repr(value)
            if isinstance(value, (list, tuple)):
                return [plain(item) for item in value]
            if isinstance(value, dict):
                return {str(key): plain(item) for key, item in value.items()}
            return value

        if hasattr(model_input, "columns"):
            return [{"column": str(name), "dtype": str(model_input[name].dtype),
                     "values": [plain(v) for v in model_input[name].tolist()]} for name in model_input.columns]
        if isinstance(model_input, dict):
            return [{"column": name, "dtype": str(array.dtype), "values": plain(array)}
                    for name, array in model_input.items()]
        return [{"column": None, "dtype": str(model_input.dtype), "values": plain(model_input)}]


SIGNATURES = {
    **{kind: Schema([ColSpec(kind, "x")]) for kind in COLUMN_TYPES},
    "table": Schema([ColSpec("double", "x_double"), ColSpec("long", "x_long"), ColSpec("string", "x_string")]),
    "tensor": Schema([TensorSpec(np.dtype(np.float32), (-1, 2))]),
    "named_tensors": Schema([TensorSpec(np.dtype(np.float64), (-1,), "a"), TensorSpec(np.dtype(np.int64), (-1,), "b")]),
}


def main(out: Path) -> None:
    for name, inputs in SIGNATURES.items():
        mlflow.pyfunc.save_model(out / name, python_model=Echo(), signature=ModelSignature(inputs=inputs))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
