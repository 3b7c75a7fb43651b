"""The training baseline: bins of numeric, discrete and categorical data, the prediction
distribution, the file saved with a model (and carried by registered versions), the ``baseline``
command's errors."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring_server.monitoring.baseline import (BASELINE_FILE, CATEGORICAL, NUMERIC, Baseline, build_baseline,
                                                distribution_of, read_baseline)

from ..test_cli import run_cli
from .drift_models import mixed_rows, save_mixed_model


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    return save_mixed_model(tmp_path_factory.mktemp("baseline") / "mixed", mixed_rows(2000, seed=0))


def test_numeric_bins_are_deciles_and_missing_values_have_their_own_bin():
    values = np.concatenate([np.random.default_rng(0).permutation(np.arange(1.0, 1001.0)), [np.nan, np.nan]])
    column = distribution_of("x", values)
    assert column.kind == NUMERIC
    assert column.bins.edges.tolist() == [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0]
    assert column.shares == pytest.approx([100 / 1002] * 10 + [2 / 1002])
    # (-inf, 100], (100, 200], ..., (900, inf], missing
    assert column.bins.codes(np.array([-5.0, 100.0, 100.5, 900.0, 901.0, np.inf, np.nan])).tolist() == [
        0, 0, 1, 8, 9, 9, 10]


def test_discrete_values_get_one_bin_each():
    values = np.array([0] * 50 + [1] * 30 + [2] * 20)
    column = distribution_of("count", values)
    assert column.bins.edges.tolist() == [0.0, 1.0, 2.0]  # nine deciles, three distinct values
    assert column.shares == pytest.approx([0.5, 0.3, 0.2, 0.0, 0.0])
    assert column.bins.codes(np.array([0, 1, 1.5, 2, 3])).tolist() == [0, 1, 2, 2, 3]


def test_categorical_values_keep_the_most_common_and_count_the_rest_as_other():
    values = np.array(["a"] * 40 + ["b"] * 30 + ["c"] * 10 + ["d"] * 10 + ["e"] * 5 + [None] * 5, dtype=object)
    column = distribution_of("letter", values, top_values=3)
    assert column.kind == CATEGORICAL
    assert column.bins.values == ("a", "b", "c")  # c before d: equal counts, ordered by value
    assert column.shares == pytest.approx([0.4, 0.3, 0.1, 0.15, 0.05])  # ..., other, missing
    assert column.bins.codes(np.array(["b", "z", None, np.nan, "a"], dtype=object)).tolist() == [1, 3, 4, 4, 0]
    assert column.to_json()["other"] == pytest.approx(0.15)


def test_booleans_are_categorical_and_dates_or_bytes_are_not_binned():
    flags = distribution_of("flag", np.array([True, True, False, True]))
    assert (flags.kind, flags.bins.values, flags.shares.tolist()) == (CATEGORICAL, (True, False), [0.75, 0.25, 0, 0])
    assert distribution_of("when", pd.date_range("2024-01-01", periods=5).to_numpy()) is None
    assert distribution_of("blob", np.array([b"x", b"y"], dtype=object)) is None
    assert distribution_of("numbers", np.array([1, 2.5, None], dtype=object)).kind == NUMERIC


def test_save_model_with_baseline_data_bins_every_column_and_the_predictions(mixed_model):
    baseline = read_baseline(mixed_model)
    assert baseline.rows == 2000
    assert [(c.name, c.kind) for c in baseline.features] == [
        ("a", NUMERIC), ("b", NUMERIC), ("c", NUMERIC), ("d", CATEGORICAL)]
    assert baseline.features[2].bins.edges.tolist() == [0.0, 1.0, 2.0, 3.0]  # integers 0..3
    assert set(baseline.features[3].bins.values) == {"red", "green", "blue"}
    assert [(c.name, c.kind) for c in baseline.predictions] == [("prediction", NUMERIC)]
    document = json.loads((mixed_model / BASELINE_FILE).read_text())
    assert document["format"] == 1 and document["created"].endswith("Z")
    assert Baseline.from_json(document).to_json() == document


def test_labels_are_a_categorical_prediction_and_max_rows_samples(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from flavors import load_model
    from flavors.signature import infer_signature
    from flavors.sklearn import save_model

    frame = pd.DataFrame({"x": np.linspace(-1, 1, 500)})
    labels = np.where(frame.x > 0.5, "high", "low")
    save_model(LogisticRegression().fit(frame, labels), tmp_path / "m", signature=infer_signature(frame, labels))
    baseline = build_baseline(load_model(str(tmp_path / "m")), frame, bins=4, max_rows=100)
    assert baseline.rows == 100
    assert len(baseline.features[0].bins.edges) == 3
    [prediction] = baseline.predictions
    assert prediction.kind == CATEGORICAL and set(prediction.bins.values) <= {"high", "low"}


def _document(path):
    return json.loads((path / BASELINE_FILE).read_text())


@pytest.mark.parametrize("spoil", [
    lambda document: "not json {",
    lambda document: json.dumps({**document, "format": 2}),
    lambda document: json.dumps({**document, "rows": "many"}),
    lambda document: json.dumps({**document, "features": [{**document["features"][0], "shares": [1.0]}]}),
    lambda document: json.dumps({**document, "features": [{**document["features"][0], "edges": [3, 2, 1]}]}),
    lambda document: json.dumps({**document, "features": [{**document["features"][0], "kind": "text"}]}),
    lambda document: json.dumps({**document, "predictions": [{"name": "p", "kind": "categorical"}]}),
], ids=["not-json", "format", "rows", "shares", "edges", "kind", "incomplete"])
def test_a_malformed_baseline_is_logged_and_treated_as_absent(mixed_model, tmp_path, caplog, spoil):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(mixed_model, copy)
    (copy / BASELINE_FILE).write_text(spoil(_document(mixed_model)))
    with caplog.at_level(logging.WARNING, logger="scoring_server.monitoring.baseline"):
        assert read_baseline(copy) is None
    assert "Ignoring the drift baseline" in caplog.text
    assert read_baseline(tmp_path) is None  # no file at all: no baseline, nothing logged
    assert caplog.text.count("Ignoring") == 1


def test_a_registered_version_carries_the_baseline_and_is_served_with_it(mixed_model, tmp_path):
    from scoring_server.monitoring.drift import drift_report
    from scoring_server.registry import ModelRegistry

    from ..conftest import InProcessServer
    from .drift_models import split

    version = ModelRegistry(tmp_path / "registry").register("mixed", str(mixed_model))
    assert (Path(version.path) / BASELINE_FILE).read_bytes() == (mixed_model / BASELINE_FILE).read_bytes()
    server = InProcessServer("models:/mixed/1", registry_uri=str(tmp_path / "registry"), drift_sample_fraction=1.0)
    assert server.post(split(mixed_rows(5, seed=1))).status_code == 200
    [entry] = drift_report(server.app)["mixed"]
    assert (entry["version"], entry["baseline"], entry["rows"], entry["status"]) == ("1", True, 5, "insufficient_data")


def test_the_baseline_command_writes_the_file_and_says_what_it_binned(mixed_model, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(mixed_model, model)
    (model / BASELINE_FILE).unlink()
    mixed_rows(300, seed=4).assign(when=pd.Timestamp("2024-01-01"), extra=1).to_parquet(tmp_path / "training.parquet")
    result = run_cli("baseline", "-m", str(model), "-i", str(tmp_path / "training.parquet"), "--bins", "5")
    assert result.returncode == 0, result.stderr
    binned = "a (numeric), b (numeric), c (numeric), d (categorical), prediction (numeric)"
    assert f"from 300 rows: {binned}" in result.stdout
    baseline = read_baseline(model)
    assert baseline.rows == 300 and len(baseline.features[0].bins.edges) == 4  # the extra columns are not the model's


@pytest.mark.parametrize("content, name, expected", [
    ("a,b\n1,2\n", "training.csv", "the training data lacks the model's input columns ['c', 'd'] (it has ['a', 'b'])"),
    ("a,b,c,d\nx,1,1,red\n", "training.csv", "the training data does not fit the model's signature: Invalid input"),
    ("not a parquet file", "training.parquet", "cannot read training data"),
    ("a,b,c,d\n", "training.csv", "the training data has no rows"),
    ("{}", "training.json", "training.json: training data must be a .csv or .parquet file"),
], ids=["missing-columns", "wrong-type", "unreadable", "empty", "format"])
def test_the_baseline_command_refuses_unusable_training_data_clearly(mixed_model, tmp_path, content, name, expected):
    path = tmp_path / name
    path.write_text(content)
    result = run_cli("baseline", "-m", str(mixed_model), "-i", str(path))
    assert result.returncode == 1
    assert f"Error: {expected}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_baseline_command_refuses_missing_files_and_registered_versions(mixed_model, tmp_path):
    result = run_cli("baseline", "-m", str(mixed_model), "-i", str(tmp_path / "absent.csv"))
    assert result.returncode == 1 and "cannot read training data" in result.stderr and "absent.csv" in result.stderr
    result = run_cli("baseline", "-m", "models:/mixed/1", "-i", str(tmp_path / "absent.csv"))
    assert result.returncode == 1 and "a registered version cannot change" in result.stderr
    result = run_cli("baseline", "-m", str(tmp_path / "no-model"), "-i", str(tmp_path / "absent.csv"))
    assert result.returncode == 1 and "cannot load model" in result.stderr


CODE_MODEL = '''
import numpy as np
from flavors.python_model import PythonModel, set_model


class Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        if (model_input["x"] < 0).any():
            raise ValueError("negative x")
        return model_input["x"].to_numpy() * 2


set_model(Doubler())
'''


def test_python_function_save_model_takes_baseline_data_and_reports_a_failing_model(tmp_path):
    from flavors.python_function import save_model
    from flavors.signature import infer_signature
    from scoring_server.monitoring.baseline import BaselineError

    code = tmp_path / "doubler.py"
    code.write_text(CODE_MODEL)
    frame = pd.DataFrame({"x": np.arange(1.0, 101.0)})
    save_model(tmp_path / "ok", python_model=str(code), signature=infer_signature(frame), baseline_data=frame)
    [prediction] = read_baseline(tmp_path / "ok").predictions
    assert prediction.bins.edges.tolist() == [20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0]
    with pytest.raises(BaselineError, match="the model failed on the training data: ValueError: negative x"):
        save_model(tmp_path / "failing", python_model=str(code), signature=infer_signature(frame),
                   baseline_data=frame - 50)
