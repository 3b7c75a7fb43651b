"""Model directories laid out exactly as MLflow 1.x wrote them, built by the tests themselves."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
import joblib
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from flavors.mlflow_aliases import dump_python_model
from flavors.python_model import PythonModel

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# 1.x signatures have no "required" key.
SIGNATURE = {
    "inputs": json.dumps([{"name": name, "type": "double"} for name in COLUMNS]),
    "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]),
}
CONDA = {"name": "mlflow-env", "channels": ["conda-forge"],
         "dependencies": ["python=3.8.10", "pip", {"pip": ["mlflow==1.30.1", "scikit-learn==1.0.2"]}]}


def iris_estimator() -> LogisticRegression:
    features, target = load_iris(return_X_y=True, as_frame=True)
    features.columns = COLUMNS
    return LogisticRegression(max_iter=500).fit(features, target)


def write_sklearn_model(path: Path, *, data_key: bool = False) -> Path:
    """`mlflow.sklearn.save_model` of 1.30: cloudpickle, `env: conda.yaml`; with ``data_key`` the
    older `data:` key instead of `model_path:`."""
    path.mkdir(parents=True)
    with open(path / "model.pkl", "wb") as f:
        cloudpickle.dump(iris_estimator(), f)
    pyfunc = {"env": "conda.yaml", "loader_module": "mlflow.sklearn", "python_version": "3.8.10",
              ("data" if data_key else "model_path"): "model.pkl"}
    if not data_key:
        pyfunc["predict_fn"] = "predict"
    flavors = {"python_function": pyfunc,
               "sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle",
                           "sklearn_version": "1.0.2", "code": None}}
    _write(path, flavors, SIGNATURE)
    return path


class ProbaOfClass(PythonModel):
    """A 1.x-era custom model: probabilities of one class from a joblib artifact."""

    def load_context(self, context):
        self.estimator = joblib.load(context.artifacts["estimator"])

    def predict(self, context, model_input):
        return self.estimator.predict_proba(model_input)[:, 2]


def write_pyfunc_model(path: Path) -> Path:
    """`mlflow.pyfunc.save_model` of 1.30: cloudpickled python_model.pkl naming mlflow.pyfunc.model."""
    (path / "artifacts").mkdir(parents=True)
    joblib.dump(iris_estimator(), path / "artifacts" / "estimator.joblib")
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the class travels inside the pickle, as in a notebook
    try:
        dump_python_model(ProbaOfClass(), path / "python_model.pkl")
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    flavors = {"python_function": {
        "artifacts": {"estimator": {"path": "artifacts/estimator.joblib", "uri": "/tmp/estimator.joblib"}},
        "cloudpickle_version": "2.2.0", "env": "conda.yaml", "loader_module": "mlflow.pyfunc.model",
        "python_model": "python_model.pkl", "python_version": "3.8.10"}}
    _write(path, flavors, SIGNATURE)
    return path


def _write(path: Path, flavors: dict, signature: dict) -> None:
    (path / "conda.yaml").write_text(yaml.safe_dump(CONDA))
    mlmodel = {"artifact_path": "model", "flavors": flavors, "mlflow_version": "1.30.1",
               "model_uuid": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "run_id": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
               "signature": signature, "utc_time_created": "2023-01-10 10:00:00.000000"}
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
