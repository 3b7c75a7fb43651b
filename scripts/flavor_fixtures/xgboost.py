"""Write the XGBoost fixtures with real MLflow: run ONCE with MLflow's venv.

    .bench/mlflow/bin/python scripts/flavor_fixtures/xgboost.py

Writes tests/fixtures/mlflow-models/xgboost_<variant>/ with ``mlflow.xgboost.save_model`` and beside
each an ``expected.json`` (see ``_trees.write_expected``):

* ``xgboost_booster``: an ``xgboost.Booster`` (binary:logistic, named features), MLflow's default
  ``model.ubj``; MLflow's pyfunc answers float32 probabilities.
* ``xgboost_classifier``: an ``XGBClassifier`` (3 classes) saved as ``model.json``; MLflow's pyfunc
  answers labels; ``predict_proba`` in expected.json is the framework's own answer.
Both carry the column signature MLflow infers from a 3-row DataFrame input example.
"""
from __future__ import annotations

import shutil

import _trees  # noqa: F401  (this directory, found before sys.path is reordered)

_trees.own_dir_last(__file__)

import mlflow.xgboost  # noqa: E402
import xgboost as xgb  # noqa: E402


def booster() -> None:
    path = _trees.OUT / "xgboost_booster"
    frame, target = _trees.training_data(2)
    model = xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 0},
                      xgb.DMatrix(frame, label=target), num_boost_round=5)
    mlflow.xgboost.save_model(model, str(path), input_example=frame.head(3))
    _trees.write_expected(path, _trees.request_rows())


def classifier() -> None:
    path = _trees.OUT / "xgboost_classifier"
    frame, target = _trees.training_data(3)
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, random_state=0).fit(frame, target)
    mlflow.xgboost.save_model(model, str(path), input_example=frame.head(3), model_format="json")
    rows = _trees.request_rows()
    _trees.write_expected(path, rows, predict_proba=model.predict_proba(rows))


def main() -> None:
    for name in ("xgboost_booster", "xgboost_classifier"):
        shutil.rmtree(_trees.OUT / name, ignore_errors=True)
    booster()
    classifier()


if __name__ == "__main__":
    main()
