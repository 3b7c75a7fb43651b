"""XGBoost and LightGBM models our save API writes load in real MLflow 3.17 (``mlflow.pyfunc.load_model``)
and predict what our loader predicts. Runs .bench/mlflow's Python (created by scripts/test.sh)."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from flavors import LoadingPolicy, load_model
from flavors.lightgbm import MLFLOW_SKOPS_TRUSTED_TYPES
from flavors.lightgbm import save_model as save_lightgbm
from flavors.xgboost import save_model as save_xgboost

from tests.conftest import mlflow_python

from .tree_models import framework, request_frame

pytestmark = pytest.mark.heavy

#: Loads each model directory of argv[1] (a JSON list) with MLflow and prints its answer to the rows.
MLFLOW_PREDICTS = """
import json, sys
import mlflow.pyfunc, pandas as pd
paths, frame = json.loads(sys.argv[1]), pd.DataFrame(**json.loads(sys.argv[2]))
print(json.dumps({p: mlflow.pyfunc.load_model(p).predict(frame).tolist() for p in paths}))
"""


def our_models(root):
    """Our save of each kind of tree model: XGBoost Booster (ubj, json) and XGBClassifier (ubj),
    LightGBM Booster (model.lgb) and LGBMClassifier (skops, cloudpickle)."""
    xgb, lgb = framework("xgboost"), framework("lightgbm")
    frame = request_frame("xgboost_booster")
    rng = np.random.default_rng(3)
    frame = frame.sample(n=60, replace=True, random_state=3).reset_index(drop=True) + rng.normal(size=(60, 4))
    labels, example = (frame.alpha > 0).astype(int) + (frame.beta > 0), frame.head(3)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(frame, label=labels > 0), 3)
    save_xgboost(booster, root / "xgb-booster-ubj", input_example=example)
    save_xgboost(booster, root / "xgb-booster-json", input_example=example, model_format="json")
    save_xgboost(xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(frame, labels), root / "xgb-classifier",
                 input_example=example)
    lgb_booster = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 4}, lgb.Dataset(frame, label=frame.gamma), 3)
    save_lightgbm(lgb_booster, root / "lgb-booster", input_example=example)
    classifier = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(frame, labels)
    save_lightgbm(classifier, root / "lgb-classifier-skops", input_example=example)
    save_lightgbm(classifier, root / "lgb-classifier-cloudpickle", input_example=example,
                  serialization_format="cloudpickle")
    return sorted(str(path) for path in root.iterdir()), frame.head(8)


def test_our_tree_models_predict_in_mlflow_as_in_our_loader(tmp_path):
    paths, frame = our_models(tmp_path)
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}  # MLflow's gate for skops and pickles
    split = frame.to_dict(orient="split")
    out = subprocess.run([mlflow_python(), "-c", MLFLOW_PREDICTS, json.dumps(paths),
                          json.dumps({"columns": split["columns"], "data": split["data"]})],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    mlflows = json.loads(out.stdout.strip().splitlines()[-1])

    policy = LoadingPolicy(skops_trusted_types=MLFLOW_SKOPS_TRUSTED_TYPES)
    for path in paths:
        ours = load_model(path, policy=policy).predict(frame)
        np.testing.assert_array_equal(np.asarray(mlflows[path], dtype=ours.dtype), ours, err_msg=path)
