"""Models written by MLflow 3.17.2 load and predict without MLflow installed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from flavors import load_model, load_serving_input_example

ABC = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]})


def test_mlflow_is_not_installed():
    assert importlib.util.find_spec("mlflow") is None


@pytest.mark.parametrize("name", ["iris", "iris_nosig"])
def test_iris_models_predict_setosa_for_the_first_iris_row(mlflow_models, first_iris_row, name):
    model = load_model(str(mlflow_models / name))

    assert model.flavor == "sklearn"
    assert model.predict(first_iris_row).tolist() == [0]


def test_skops_iris_model_reads_signature_and_serving_example(mlflow_models):
    model = load_model(str(mlflow_models / "iris"))

    assert model.metadata.signature.inputs.input_names() == [
        "sepal_length", "sepal_width", "petal_length", "petal_width"
    ]
    assert model.metadata.mlflow_version == "3.17.2"
    assert model.metadata.model_uuid == "6ba1766002544047819396390cb0c3bb"
    example = load_serving_input_example(model.metadata)
    assert example["dataframe_split"]["data"][0] == [5.1, 3.5, 1.4, 0.2]


def test_pickle_iris_model_without_signature_has_none(mlflow_models):
    model = load_model(str(mlflow_models / "iris_nosig"))

    assert model.metadata.signature is None
    assert load_serving_input_example(model.metadata) is None


def test_sklearn_models_are_row_independent_and_take_no_params(mlflow_models):
    model = load_model(str(mlflow_models / "iris"))

    assert model.row_independent is True
    assert model.accepts_params is False


def test_day_models_uses_the_day_of_week_param(mlflow_models):
    model = load_model(str(mlflow_models / "day_models"))

    assert model.predict(ABC, {"day_of_week": "Tuesday"}).tolist() == [406.0953097317349]


def test_day_models_defaults_to_monday(mlflow_models):
    model = load_model(str(mlflow_models / "day_models"))

    assert model.predict(ABC).tolist() == [203.04765486586746]
    assert model.predict(ABC, {}).tolist() == [203.04765486586746]


def test_day_models_raises_value_error_for_an_unknown_day(mlflow_models):
    model = load_model(str(mlflow_models / "day_models"))

    with pytest.raises(ValueError, match="Sunday"):
        model.predict(ABC, {"day_of_week": "Sunday"})


def test_day_models_context_has_absolute_artifact_paths(mlflow_models):
    model = load_model(str(mlflow_models / "day_models"))

    artifacts = model.predictor.context.artifacts
    assert sorted(artifacts) == ["Monday", "Tuesday", "Wednesday"]
    for name, path in artifacts.items():
        assert Path(path).is_absolute()
        assert Path(path) == mlflow_models / "day_models" / "artifacts" / f"{name}.joblib"


def test_custom_models_accept_params_and_are_not_row_independent(mlflow_models):
    model = load_model(str(mlflow_models / "day_models"))

    assert model.flavor == "python_function"
    assert model.accepts_params is True
    assert model.row_independent is False
