"""Shared by the XGBoost and LightGBM fixture scripts (run with MLflow's venv): the data, and the
``expected.json`` writer.

Both scripts are named like their framework, so Python would import the script itself for
``import xgboost``: each moves its own directory to the end of ``sys.path`` with :func:`own_dir_last`
before importing anything else.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mlflow-models"
COLUMNS = ["alpha", "beta", "gamma", "delta"]


def own_dir_last(script: str) -> None:
    here = Path(script).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here] + [str(here)]


def training_data(n_classes: int, n_rows: int = 200, seed: int = 17):
    """A DataFrame of 4 doubles and a target: ``n_classes`` labels, or a float target for 0."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n_rows, 4)).round(3), columns=COLUMNS)
    score = frame.alpha + 0.5 * frame.beta - frame.gamma * frame.delta + rng.normal(scale=0.3, size=n_rows)
    if n_classes == 0:
        return frame, score
    return frame, pd.Series(np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])))


def request_rows(seed: int = 5):
    """8 fresh rows: the rows expected.json's request sends."""
    return training_data(0, n_rows=8, seed=seed)[0]


def write_expected(path: Path, frame, **native) -> None:
    """MLflow's pyfunc answer to ``frame`` as ``mlflow models serve`` encodes it, with the request
    body; ``native`` adds other answers (e.g. predict_proba from the framework) under their names."""
    import mlflow.pyfunc
    from mlflow.pyfunc.scoring_server import predictions_to_json

    out = io.StringIO()
    predictions_to_json(mlflow.pyfunc.load_model(str(path)).predict(frame), out)
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
    expected = {"request": body, "predictions": json.loads(out.getvalue())["predictions"]}
    expected.update({name: value.tolist() for name, value in native.items()})
    (path / "expected.json").write_text(json.dumps(expected, indent=1))
