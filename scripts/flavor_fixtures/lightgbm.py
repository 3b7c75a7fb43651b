"""Write the LightGBM fixtures with real MLflow: run ONCE with MLflow's venv.

    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true .bench/mlflow/bin/python scripts/flavor_fixtures/lightgbm.py

(MLflow refuses to load any skops file without that variable.) Writes
tests/fixtures/mlflow-models/lightgbm_<variant>/ with ``mlflow.lightgbm.save_model`` and beside each an
``expected.json`` (see ``_trees.write_expected``):

* ``lightgbm_booster``: a ``lightgbm.Booster`` (regression): native ``model.lgb``, although MLmodel
  says ``serialization_format: skops`` (MLflow's default for every model class).
* ``lightgbm_classifier``: an ``LGBMClassifier`` (3 classes) in ``model.skops``, with MLflow's
  ``skops_trusted_types``; ``predict_proba`` in expected.json is the framework's own answer.
Both carry the column signature MLflow infers from a 3-row DataFrame input example.
"""
from __future__ import annotations

import shutil

import _trees  # noqa: F401  (this directory, found before sys.path is reordered)

_trees.own_dir_last(__file__)

import lightgbm as lgb  # noqa: E402
import mlflow.lightgbm  # noqa: E402


def booster() -> None:
    path = _trees.OUT / "lightgbm_booster"
    frame, target = _trees.training_data(0)
    model = lgb.train({"objective": "regression", "num_leaves": 7, "seed": 0, "verbose": -1},
                      lgb.Dataset(frame, label=target), num_boost_round=8)
    mlflow.lightgbm.save_model(model, str(path), input_example=frame.head(3))
    _trees.write_expected(path, _trees.request_rows())


def classifier() -> None:
    path = _trees.OUT / "lightgbm_classifier"
    frame, target = _trees.training_data(3)
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=5, random_state=0, verbose=-1).fit(frame, target)
    mlflow.lightgbm.save_model(model, str(path), input_example=frame.head(3))
    rows = _trees.request_rows()
    _trees.write_expected(path, rows, predict_proba=model.predict_proba(rows))


def main() -> None:
    for name in ("lightgbm_booster", "lightgbm_classifier"):
        shutil.rmtree(_trees.OUT / name, ignore_errors=True)
    booster()
    classifier()


if __name__ == "__main__":
    main()
