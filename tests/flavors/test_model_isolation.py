"""Loading a model leaves no process-wide state behind that another model could see.

Each model's code directory (``code_paths``) is importable only while that model loads, and its
modules are forgotten afterwards, so two models shipping a ``features.py`` each use their own.
Models-from-code files see a stand-in ``mlflow`` that nothing else sees, and loading a
scikit-learn model adds no warnings filter.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from flavors import PythonModel, load_model
from flavors.python_function import save_model as save_pyfunc_model
from flavors.sklearn import save_model as save_sklearn_model

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
REPO = Path(__file__).resolve().parents[2]


def write_features(directory: Path, source: str) -> Path:
    """``<directory>/features.py`` with ``source``: each model ships its own, under the same name."""
    directory.mkdir(parents=True)
    path = directory / "features.py"
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def features_a(tmp_path):
    return write_features(tmp_path / "src_a", "LABEL = 'a'\n\ndef f(frame):\n    return frame * 10\n")


@pytest.fixture
def features_b(tmp_path):
    return write_features(tmp_path / "src_b", "LABEL = 'b'\n\ndef f(frame):\n    return frame ** 2\n")


@contextmanager
def features_importable(source: Path):
    """Import ``features`` from ``source`` (as when the model is built), then forget it again."""
    sys.path.insert(0, str(source.parent))
    try:
        yield importlib.import_module("features")
    finally:
        sys.path.remove(str(source.parent))
        sys.modules.pop("features", None)


class BindsFeaturesInLoadContext(PythonModel):
    def load_context(self, context):
        import features

        self.features = features

    def predict(self, context, model_input, params=None):
        return self.features.f(model_input)


class CallsFunction(PythonModel):
    """Holds a function of ``features``: pickled by reference, as ``features.f``."""

    def __init__(self, func):
        self.func = func

    def predict(self, context, model_input, params=None):
        return self.func(model_input)


class ImportsFeaturesInPredict(PythonModel):
    def predict(self, context, model_input, params=None):
        import features

        return features.f(model_input)


def load_in_turn(*model_dirs):
    """The models, loaded one after the other, and sys.path as it was before the loads."""
    path_before = list(sys.path)
    models = [load_model(str(model_dir)) for model_dir in model_dirs]
    return models, path_before


def test_pyfunc_models_each_import_their_own_features_module_at_load(tmp_path, features_a, features_b):
    save_pyfunc_model(tmp_path / "a", python_model=BindsFeaturesInLoadContext(), code_paths=[features_a])
    save_pyfunc_model(tmp_path / "b", python_model=BindsFeaturesInLoadContext(), code_paths=[features_b])

    (model_a, model_b), path_before = load_in_turn(tmp_path / "a", tmp_path / "b")

    assert model_a.predict(FRAME)["x"].tolist() == [10.0, 20.0, 30.0]
    assert model_b.predict(FRAME)["x"].tolist() == [1.0, 4.0, 9.0]
    assert model_a.predictor.python_model.features.LABEL == "a"
    assert sys.path == path_before
    assert "features" not in sys.modules


def test_pickled_references_to_code_functions_resolve_to_each_models_own_module(tmp_path, features_a, features_b):
    for name, source in (("a", features_a), ("b", features_b)):
        with features_importable(source) as features:
            save_pyfunc_model(tmp_path / name, python_model=CallsFunction(features.f), code_paths=[source])

    (model_a, model_b), path_before = load_in_turn(tmp_path / "a", tmp_path / "b")

    assert model_a.predict(FRAME)["x"].tolist() == [10.0, 20.0, 30.0]
    assert model_b.predict(FRAME)["x"].tolist() == [1.0, 4.0, 9.0]
    assert sys.path == path_before
    assert "features" not in sys.modules


def test_sklearn_pipelines_each_call_their_own_features_function(tmp_path, features_a, features_b):
    expected = {}
    for name, source in (("a", features_a), ("b", features_b)):
        with features_importable(source) as features:
            pipeline = make_pipeline(FunctionTransformer(features.f), LinearRegression()).fit(FRAME, [1.0, 3.0, 8.0])
            expected[name] = pipeline.predict(pd.DataFrame({"x": [5.0]}))
            save_sklearn_model(pipeline, tmp_path / name, serialization_format="cloudpickle", code_paths=[source])

    (model_a, model_b), path_before = load_in_turn(tmp_path / "a", tmp_path / "b")

    np.testing.assert_allclose(model_a.predict(pd.DataFrame({"x": [5.0]})), expected["a"])
    np.testing.assert_allclose(model_b.predict(pd.DataFrame({"x": [5.0]})), expected["b"])
    assert not np.allclose(expected["a"], expected["b"])
    assert sys.path == path_before
    assert "features" not in sys.modules


def test_concurrent_loads_still_give_each_model_its_own_module(tmp_path, features_a, features_b):
    save_pyfunc_model(tmp_path / "a", python_model=BindsFeaturesInLoadContext(), code_paths=[features_a])
    save_pyfunc_model(tmp_path / "b", python_model=BindsFeaturesInLoadContext(), code_paths=[features_b])

    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda name: (name, load_model(str(tmp_path / name))), ["a", "b"] * 4))

    assert {name: model.predictor.python_model.features.LABEL for name, model in models} == {"a": "a", "b": "b"}
    assert "features" not in sys.modules


def test_importing_a_code_module_only_at_predict_time_is_an_error_that_says_when_to_import(tmp_path, features_a):
    save_pyfunc_model(tmp_path / "model", python_model=ImportsFeaturesInPredict(), code_paths=[features_a])
    model = load_model(str(tmp_path / "model"))

    with pytest.raises(ModuleNotFoundError, match="features.*importable only while the model loads"):
        model.predict(FRAME)


CODE_MODEL = """
    import mlflow
    import isolation_probe

    isolation_probe.running.set()
    isolation_probe.may_finish.wait(10)


    class AddOne(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            from mlflow.pyfunc import PythonModel  # the stand-ins serve predict-time imports too

            assert isinstance(self, PythonModel)
            return model_input + 1


    mlflow.models.set_model(AddOne())
"""


@pytest.fixture
def probe(monkeypatch):
    """Lets the test look at the process while a models-from-code file is running."""
    probe = types.ModuleType("isolation_probe")
    probe.running, probe.may_finish = threading.Event(), threading.Event()
    monkeypatch.setitem(sys.modules, "isolation_probe", probe)
    return probe


def test_models_from_code_see_a_stand_in_mlflow_that_the_rest_of_the_process_does_not(tmp_path, probe):
    code = tmp_path / "code_model.py"
    code.write_text(textwrap.dedent(CODE_MODEL))
    probe.may_finish.set()
    save_pyfunc_model(tmp_path / "model", python_model=code)
    probe.running.clear()
    probe.may_finish.clear()

    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_model, str(tmp_path / "model"))
        assert probe.running.wait(10)
        try:
            mlflow_in_sys_modules = "mlflow" in sys.modules
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module("mlflow")
        finally:
            probe.may_finish.set()
        model = loading.result(10)

    assert not mlflow_in_sys_modules
    assert not any(name.partition(".")[0] == "mlflow" for name in sys.modules)
    assert not any(name.startswith("_scoring_server_code_model_") for name in sys.modules)
    assert model.predict(FRAME)["x"].tolist() == [2.0, 3.0, 4.0]


@pytest.fixture
def fitted_on_frame(iris):
    features, target = iris
    return LogisticRegression(max_iter=500).fit(features, target)


def test_loading_an_sklearn_model_adds_no_warnings_filter(tmp_path, fitted_on_frame):
    save_sklearn_model(fitted_on_frame, tmp_path / "model")
    filters_before = list(warnings.filters)

    model = load_model(str(tmp_path / "model"))

    assert model.array_input is not None
    assert warnings.filters == filters_before


def test_served_array_predictions_do_not_warn_about_feature_names_and_load_adds_no_filter(
    tmp_path, fitted_on_frame, iris
):
    """In a fresh interpreter, as served (pytest drops the warnings filters added while it collects)."""
    features, _ = iris
    sklearn_model_dir = tmp_path / "model"
    save_sklearn_model(fitted_on_frame, sklearn_model_dir)
    script = textwrap.dedent(f"""
        import warnings

        import numpy as np
        import flavors.sklearn  # noqa: F401 - installs its one filter when imported, not per load
        from flavors import load_model

        filters_before = list(warnings.filters)
        model = load_model({str(sklearn_model_dir)!r})  # may import parts of scipy, which add their own filters
        added = [f for f in warnings.filters if f not in filters_before and f[1] and "feature names" in f[1].pattern]
        assert not added, f"loading added {{added}}"
        print(model.predict(np.array({features.to_numpy()[:2].tolist()!r})).tolist())
    """)

    run = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[0, 0]"
