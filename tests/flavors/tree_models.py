"""Shared by the XGBoost and LightGBM flavor tests: the fixtures' expected.json (written by
scripts/flavor_fixtures/{xgboost,lightgbm}.py with real MLflow), and the checks of what a tree
flavor declares."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from flavors import LoadedModel

from .conftest import MLFLOW_MODELS

REPO = Path(__file__).resolve().parents[2]


def framework(module: str) -> ModuleType:
    """The framework the tests compare with; missing, the test fails saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise AssertionError(f"{module} is needed by these tests: pip install -e '.[{module}]' ({exc})") from None


def expected(name: str) -> dict:
    """The request and MLflow's answers recorded beside fixture ``name``."""
    return json.loads((MLFLOW_MODELS / name / "expected.json").read_text())


def request_frame(name: str) -> pd.DataFrame:
    return pd.DataFrame(**expected(name)["request"]["dataframe_split"])


def assert_same_float32(answer: list, mlflows: list) -> None:
    """The same float32 values: our encoder (orjson) writes a float32 in its shortest form
    (0.12605459), MLflow's as the float64 it widens to (0.126054584980011)."""
    np.testing.assert_array_equal(np.asarray(answer, dtype=np.float32), np.asarray(mlflows, dtype=np.float32))


def assert_rows_independent(model: LoadedModel, frame: pd.DataFrame) -> None:
    """What ``row_independent`` promises: a batch predicts each row as that row alone."""
    assert model.row_independent
    batch = np.asarray(model.predict(frame))
    alone = np.concatenate([np.asarray(model.predict(frame.iloc[[i]])) for i in range(len(frame))])
    np.testing.assert_array_equal(batch, alone)


def assert_matrix_predicts_as_frame(model: LoadedModel, frame: pd.DataFrame) -> None:
    """What ``array_input`` promises: the float matrix of the declared columns predicts as the frame."""
    assert model.array_input is not None and model.array_input.matches(list(frame.columns))
    matrix = frame.to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(model.predict(matrix), model.predict(frame))


def framework_not_imported_by(module: str, framework_name: str) -> bool:
    """Importing flavor ``module`` (in a fresh interpreter) leaves ``framework_name`` unimported."""
    code = f"import sys, {module}; print({framework_name!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip() == "False"
