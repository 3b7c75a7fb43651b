"""What a model file may make the server do: the loading policy (which formats are loaded at all)
and skops trust (granted by the operator, never by the model's own MLmodel).

Models that run code when loaded write a marker file first, so "refused" is checked as "its code
never ran", not only as an error message."""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import skops.io
import yaml
from click.testing import CliRunner
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from flavors import FlavorRegistry, LoadingPolicy, ModelLoadError, UntrustedTypesError, load_model
from flavors.policy import FORMATS, FormatNotAllowedError
from flavors.python_function import save_model as save_pyfunc
from flavors.python_model import PythonModel
from scoring_server.cli import main
from scoring_server.config import ConfigError, load_config

from ..conftest import FIXTURES, InProcessServer, constant_model

IRIS_ROW = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                "data": [[5.1, 3.5, 1.4, 0.2]]}}
ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}


class _RunsCode:
    """Unpickles by calling exec: what any pickle can do. The code appends to ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'a').write('ran\\n')",)


def code_running_pickle_model(path: Path, marker: Path, serialization_format: str = "cloudpickle") -> Path:
    """A scikit-learn model directory whose model.pkl runs code when unpickled (then fails to load:
    exec returns None, which has no predict)."""
    constant_model(path, 1.0)
    conf = yaml.safe_load((path / "MLmodel").read_text())
    conf["flavors"]["sklearn"]["serialization_format"] = serialization_format
    (path / "MLmodel").write_text(yaml.safe_dump(conf))
    (path / "model.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    return path


def code_running_pyfunc_model(path: Path, marker: Path) -> Path:
    """A custom (python_function) model whose python_model.pkl runs code when unpickled."""
    save_pyfunc(path, python_model=_Constant())
    (path / "python_model.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    return path


def code_model(path: Path, marker: Path, tmp_path: Path) -> Path:
    """A models-from-code model whose .py file appends to ``marker`` every time it is run."""
    source = tmp_path / "model_code.py"
    source.write_text(textwrap.dedent(f"""
        from flavors.python_model import set_model
        open({str(marker)!r}, "a").write("ran\\n")
        set_model(lambda model_input: [1.0] * len(model_input))
    """))
    save_pyfunc(path, python_model=str(source))
    marker.unlink()  # saving runs the file once, to check it calls set_model
    return path


class _Constant(PythonModel):
    def predict(self, context, model_input, params=None):
        return [1.0] * len(model_input)


def ran(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


# --- the loading policy ------------------------------------------------------------------------

SKOPS_ONLY = LoadingPolicy(formats={"skops"})


@pytest.mark.parametrize("make, model_format", [
    (lambda path, marker, tmp: code_running_pickle_model(path, marker, "pickle"), "pickle"),
    (lambda path, marker, tmp: code_running_pickle_model(path, marker, "cloudpickle"), "cloudpickle"),
    (lambda path, marker, tmp: code_running_pyfunc_model(path, marker), "cloudpickle"),
    (lambda path, marker, tmp: code_model(path, marker, tmp), "code"),
])
def test_a_refused_format_is_not_loaded_and_its_code_never_runs(tmp_path, make, model_format):
    marker = tmp_path / "marker"
    model_dir = make(tmp_path / "model", marker, tmp_path)
    with pytest.raises(FormatNotAllowedError, match=f"stored as {model_format}.*--model-formats") as refused:
        load_model(str(model_dir), policy=SKOPS_ONLY)
    assert refused.value.model_format == model_format and ran(marker) == 0
    # The same model under the default policy (every format, for compatibility) does run its code.
    try:
        load_model(str(model_dir))
    except ModelLoadError:
        pass  # the pickles load None; the code model loads
    assert ran(marker) == 1


@pytest.mark.parametrize("fixture, model_format", [("iris", "skops"), ("iris_nosig", "pickle"),
                                                   ("day_models", "cloudpickle")])
def test_mlflow_written_models_report_their_format_and_load_when_it_is_allowed(fixture, model_format):
    model = load_model(str(FIXTURES / fixture), policy=LoadingPolicy(formats={model_format}))
    assert model.model_format == model_format
    others = LoadingPolicy(formats={"skops", "cloudpickle", "pickle", "code"} - {model_format})
    with pytest.raises(FormatNotAllowedError):
        load_model(str(FIXTURES / fixture), policy=others)


def test_the_policy_names_only_known_formats():
    with pytest.raises(ValueError, match="unknown model format"):
        LoadingPolicy(formats={"skops", "json"})


class _PluginPredictor:
    def predict(self, data, params=None):
        return [0] * len(data)


class _OldPlugin:
    """A plug-in flavor from before loading policies: it cannot say what file it reads."""

    name = "legacy"
    loader_modules = ("legacy.loader",)

    def load(self, metadata):
        return _PluginPredictor()


def test_a_plugin_that_cannot_say_what_it_loads_is_refused_under_a_restricted_policy(tmp_path):
    shutil.copytree(FIXTURES / "iris", tmp_path / "model")
    conf = yaml.safe_load((tmp_path / "model" / "MLmodel").read_text())
    conf["flavors"]["python_function"]["loader_module"] = "legacy.loader"
    (tmp_path / "model" / "MLmodel").write_text(yaml.safe_dump(conf))
    registry = FlavorRegistry([_OldPlugin()])
    assert load_model(str(tmp_path / "model"), registry).model_format is None  # default policy: as before
    with pytest.raises(ModelLoadError, match="does not say which file format"):
        load_model(str(tmp_path / "model"), registry, policy=SKOPS_ONLY)


# --- skops trust ---------------------------------------------------------------------------------

def test_the_mlflow_iris_fixture_needs_no_extra_trust():
    """LogisticRegression is among skops' default types, so refusing MLmodel's list costs nothing here."""
    assert skops.io.get_untrusted_types(file=FIXTURES / "iris" / "model.skops") == []
    model = load_model(str(FIXTURES / "iris"), policy=SKOPS_ONLY)
    assert model.model_format == "skops"


@pytest.fixture
def system_calling_skops_model(tmp_path) -> Path:
    """A skops model that would call os.system on its input, and whose MLmodel says to trust that:
    what a model's author could write, and what MLflow's advisory was about."""
    path = constant_model(tmp_path / "model", 1.0)
    regressor = DummyRegressor().fit(np.zeros((2, 2)), [0, 0])
    skops.io.dump(Pipeline([("run", FunctionTransformer(func=os.system)), ("model", regressor)]), path / "model.skops")
    conf = yaml.safe_load((path / "MLmodel").read_text())
    conf["flavors"]["sklearn"].update(serialization_format="skops", pickled_model="model.skops",
                                      skops_trusted_types=["posix.system"])
    conf["flavors"]["python_function"]["model_path"] = "model.skops"
    (path / "MLmodel").write_text(yaml.safe_dump(conf))
    (path / "model.pkl").unlink()
    return path


def test_types_a_model_trusts_for_itself_are_refused_naming_them_and_the_flag(system_calling_skops_model):
    with pytest.raises(UntrustedTypesError) as refused:
        load_model(str(system_calling_skops_model))
    assert refused.value.types == ["posix.system"]
    assert "--skops-trusted-types posix.system" in str(refused.value)


def test_types_in_the_file_but_not_granted_are_refused_even_if_mlmodel_lists_none(system_calling_skops_model):
    conf = yaml.safe_load((system_calling_skops_model / "MLmodel").read_text())
    conf["flavors"]["sklearn"]["skops_trusted_types"] = None
    (system_calling_skops_model / "MLmodel").write_text(yaml.safe_dump(conf))
    with pytest.raises(UntrustedTypesError, match="posix.system.*--skops-trusted-types"):
        load_model(str(system_calling_skops_model))


def test_types_the_operator_grants_are_trusted(system_calling_skops_model):
    model = load_model(str(system_calling_skops_model), policy=LoadingPolicy(skops_trusted_types={"posix.system"}))
    assert model.predictor.estimator.steps[0][1].func is os.system


def test_granted_types_come_from_the_server_configuration(system_calling_skops_model):
    models_file = _models_file(system_calling_skops_model.parent, m=system_calling_skops_model)
    refused = InProcessServer(None, models_file=models_file).get("/models/m")
    assert refused.status_code == 503 and "posix.system" in refused.json()["message"]
    granted = InProcessServer(None, models_file=models_file, skops_trusted_types="posix.system").get("/models/m")
    assert granted.status_code == 200 and granted.json()["flavor"] == "sklearn"


# --- the server's configuration ----------------------------------------------------------------

def _models_file(folder: Path, **models: Path) -> str:
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump({name: str(uri) for name, uri in models.items()}))
    return str(path)


def test_model_formats_are_parsed_and_checked():
    assert load_config(env={}).model_formats == ["skops", "onnx", "xgboost", "lightgbm", "torch-export", "keras",
                                                 "cloudpickle", "pickle", "code"]
    assert tuple(load_config(env={}).model_formats) == FORMATS  # the config lists what flavors.policy knows
    assert load_config(env={"SCORING_SERVER_MODEL_FORMATS": " skops , code,"}).model_formats == ["skops", "code"]
    for bad in ("skops,json", "", " , "):
        with pytest.raises(ConfigError, match="model_formats"):
            load_config(env={"SCORING_SERVER_MODEL_FORMATS": bad})
    with pytest.raises(ConfigError, match="skops_trusted_types: 'os' is not a type name"):
        load_config(env={"SCORING_SERVER_SKOPS_TRUSTED_TYPES": "os"})


def test_serve_refuses_a_single_pickled_model_under_a_skops_only_policy():
    result = CliRunner().invoke(main, ["serve", "-m", str(FIXTURES / "iris_nosig"), "--model-formats", "skops",
                                       "-p", "0"])
    assert result.exit_code == 1
    assert "stored as pickle" in result.stderr and "--model-formats" in result.stderr


def test_a_catalog_under_a_skops_only_policy_serves_skops_and_refuses_pickles_without_running_them(tmp_path):
    marker = tmp_path / "marker"
    code_running_pickle_model(tmp_path / "evil", marker)
    server = InProcessServer(None, model_formats="skops",
                             models_file=_models_file(tmp_path, iris=FIXTURES / "iris", evil=tmp_path / "evil"))
    assert server.post(IRIS_ROW, path="/models/iris/invocations").json() == {"predictions": [0]}
    refused = server.post(ROW, path="/models/evil/invocations")
    assert refused.status_code == 503 and "loading policy" in refused.json()["message"]
    assert ran(marker) == 0


def test_each_pickle_load_logs_one_warning_naming_the_model_and_format(tmp_path, caplog):
    server = InProcessServer(None, models_file=_models_file(
        tmp_path, pickled=constant_model(tmp_path / "pickled", 3.0), safe=FIXTURES / "iris"))
    with caplog.at_level(logging.WARNING, logger="scoring_server"):
        for _ in range(3):
            assert server.post(ROW, path="/models/pickled/invocations").json() == {"predictions": [3.0]}
        server.post(IRIS_ROW, path="/models/safe/invocations")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # one load of "pickled" (then cached), none for the skops model
    assert "pickled" in warnings[0] and "cloudpickle" in warnings[0]


def test_a_load_that_runs_code_and_fails_is_not_rerun_on_every_request(tmp_path):
    """The catalog remembers a failure for retry_seconds: 20 requests (and describes) run the code once."""
    marker = tmp_path / "marker"
    code_running_pickle_model(tmp_path / "evil", marker)
    server = InProcessServer(None, models_file=_models_file(tmp_path, evil=tmp_path / "evil"))
    statuses = {server.post(ROW, path="/models/evil/invocations").status_code for _ in range(20)}
    statuses |= {server.get("/models/evil").status_code for _ in range(5)}
    assert statuses == {503} and ran(marker) == 1
