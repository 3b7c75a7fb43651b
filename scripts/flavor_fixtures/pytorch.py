"""Write the PyTorch fixtures with real MLflow (run once with the MLflow venv):

    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true .bench/mlflow/bin/python scripts/flavor_fixtures/pytorch.py

Into tests/fixtures/mlflow-models/pytorch_<variant>/, each with an ``expected.json`` holding the input rows
and MLflow's own ``mlflow.pyfunc.load_model(...).predict(...)`` answer:

* ``pytorch_pt2``: MLflow 3's default layout (``data/model.pt2``, torch.export), saved with a 5-row numpy
  example: the export keeps the batch dimension dynamic; tensor signature (pt2 requires one).
* ``pytorch_pt2_one_row``: the same saved with a one-row example: the export fixes the batch dimension at 1,
  so MLflow itself answers only one row per request (``expected.json`` records its error for more).
* ``pytorch_pickled``: ``serialization_format="pickle"`` (``data/model.pth`` + ``pickle_module_info.txt``),
  the class in ``code/tiny_mlp.py``, a DataFrame example (column signature of doubles, DataFrame output).

The MLP (4 inputs, 3 outputs, Linear/ReLU) is built from a fixed seed.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pandas as pd
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mlflow-models"
COLUMNS = ["a", "b", "c", "d"]
MLP_SOURCE = '''import torch


class TinyMLP(torch.nn.Module):
    """4 inputs -> 8 hidden (ReLU) -> 3 outputs."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))
'''


def main() -> None:
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"  # to read back the pickled fixture
    code_dir = Path(tempfile.mkdtemp())
    (code_dir / "tiny_mlp.py").write_text(MLP_SOURCE)
    sys.path.insert(0, str(code_dir))
    from tiny_mlp import TinyMLP

    torch.manual_seed(17)
    model = TinyMLP().eval()
    rows = np.random.default_rng(17).normal(size=(6, 4)).astype(np.float32)

    path = _fresh("pytorch_pt2")
    mlflow.pytorch.save_model(model, path, input_example=rows[:5])
    _expected(path, rows)

    path = _fresh("pytorch_pt2_one_row")
    mlflow.pytorch.save_model(model, path, input_example=rows[:1])
    _expected(path, rows[:1], also_try=rows)

    path = _fresh("pytorch_pickled")
    frame = pd.DataFrame(rows.astype(np.float64), columns=COLUMNS)
    mlflow.pytorch.save_model(model, path, serialization_format="pickle", input_example=frame.iloc[:3],
                              code_paths=[str(code_dir / "tiny_mlp.py")])
    _expected(path, frame)


def _fresh(name: str) -> Path:
    path = FIXTURES / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def _expected(path: Path, data, also_try=None) -> None:
    """expected.json: the rows (split orient for a frame, a list for a tensor) and pyfunc's answer."""
    model = mlflow.pyfunc.load_model(str(path))
    answer = model.predict(data)
    expected = {"predictions": answer.to_dict(orient="records") if isinstance(answer, pd.DataFrame)
                else answer.tolist()}
    if isinstance(data, pd.DataFrame):
        expected["dataframe_split"] = {"columns": list(data.columns), "data": data.to_numpy().tolist()}
    else:
        expected["inputs"] = data.tolist()
    if also_try is not None:
        try:
            model.predict(also_try)
            expected["mlflow_error_for_more_rows"] = None
        except Exception as exc:  # the batch dimension fixed at 1 by the export
            expected["mlflow_error_for_more_rows"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    (path / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
