"""Shared fixtures for the flavors tests: the MLflow-written models and iris data."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_iris

MLFLOW_MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow-models"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def mlflow_models() -> Path:
    return MLFLOW_MODELS


@pytest.fixture
def copy_fixture(tmp_path):
    """Copy an MLflow-written fixture model into tmp_path so a test may edit it."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(MLFLOW_MODELS / name, tmp_path / name))

    return copy


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris()
    return pd.DataFrame(data.data, columns=IRIS_COLUMNS), pd.Series(data.target)


@pytest.fixture
def first_iris_row() -> pd.DataFrame:
    return pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=IRIS_COLUMNS)
