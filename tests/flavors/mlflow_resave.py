"""Run by MLflow 3.17's Python (tests/flavors/test_saved_models_load_in_mlflow.py): load each model
our save API wrote with ``mlflow.pyfunc.load_model``, predict its example, save the same model with
MLflow's own ``save_model`` and print both signatures as MLflow reads them, as JSON on stdout.

argv: the JSON case list; each case has ``path``, ``kind`` (sklearn, pyfunc, code), ``frame`` or
``array`` (the example data), optional ``params``, ``format``, ``trusted``, ``code_file``.
"""
import json
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd


def example_of(case):
    data = pd.DataFrame(**case["frame"]) if "frame" in case else np.array(case["array"])
    return data, case.get("params")


def resave(case, model, example, target):
    """The same model saved by MLflow, with the same example (MLflow infers its signature)."""
    if case["kind"] == "sklearn":
        mlflow.sklearn.save_model(mlflow.sklearn.load_model(case["path"]), target, input_example=example,
                                  serialization_format=case["format"], skops_trusted_types=case.get("trusted"))
    elif case["kind"] == "code":
        mlflow.pyfunc.save_model(target, python_model=case["code_file"], input_example=example)
    else:
        conf = mlflow.models.Model.load(case["path"]).flavors["python_function"]
        artifacts = {name: str(Path(case["path"]) / a["path"]) for name, a in (conf.get("artifacts") or {}).items()}
        code = Path(case["path"]) / conf["code"] if conf.get("code") else None
        mlflow.pyfunc.save_model(target, python_model=model.unwrap_python_model(), artifacts=artifacts or None,
                                 code_paths=[str(p) for p in code.iterdir()] if code else None,
                                 input_example=example)


def as_json(value):
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="list")
    return np.asarray(value).tolist()


def check(case, workdir):
    model = mlflow.pyfunc.load_model(case["path"])
    data, params = example_of(case)
    example = (data, params) if params else data
    target = str(Path(workdir) / (Path(case["path"]).name + "-mlflow"))
    resave(case, model, example, target)
    signature = mlflow.models.Model.load(case["path"]).signature
    theirs = mlflow.models.Model.load(target).signature
    return {
        "predictions": as_json(model.predict(data, params=params)),
        "signature": signature.to_dict() if signature else None,
        "mlflow_signature": theirs.to_dict() if theirs else None,
    }


if __name__ == "__main__":
    cases, workdir = json.loads(sys.argv[1]), sys.argv[2]
    print(json.dumps({case["path"]: check(case, workdir) for case in cases}))
