"""Custom Python models: pickled PythonModel subclasses and models-from-code files."""
from __future__ import annotations

import importlib
import importlib.util
import pickletools
import sys
import textwrap
import uuid

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression

from flavors import ModelLoadError, PythonModel, load_model, load_serving_input_example
from flavors.python_function import save_model
from flavors.signature import infer_signature

FRAME = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})


def mlmodel(model_dir):
    return yaml.safe_load((model_dir / "MLmodel").read_text())


class Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input * (params or {}).get("factor", 2)


@pytest.fixture
def regression_artifact(tmp_path):
    path = tmp_path / "inputs" / "regression.joblib"
    path.parent.mkdir()
    joblib.dump(LinearRegression().fit(FRAME, [1.0, 2.0]), path)
    return path


@pytest.fixture
def helper_module(tmp_path):
    """A module outside sys.path that the model imports while it loads (shipped as a code path)."""
    name = f"offset_helper_{uuid.uuid4().hex}"
    source = tmp_path / "src" / f"{name}.py"
    source.parent.mkdir()
    source.write_text("OFFSET = 100.0\n")
    return name, source


def test_model_with_artifacts_and_code_path_round_trips(tmp_path, regression_artifact, helper_module):
    helper_name, helper_source = helper_module

    class RegressionPlusOffset(PythonModel):  # defined here: pickled by value, as in a notebook
        def __init__(self, helper):
            self.helper = helper

        def load_context(self, context):
            self.regression = joblib.load(context.artifacts["regression"])
            self.offset = importlib.import_module(self.helper).OFFSET

        def predict(self, context, model_input, params=None):
            return self.regression.predict(model_input) + self.offset

    save_model(
        tmp_path / "model",
        python_model=RegressionPlusOffset(helper_name),
        artifacts={"regression": str(regression_artifact)},
        code_paths=[helper_source],
        input_example=FRAME,
    )
    model = load_model(str(tmp_path / "model"))

    np.testing.assert_allclose(model.predict(FRAME), [101.0, 102.0])
    assert model.predictor.context.artifacts == {"regression": str(tmp_path / "model" / "artifacts" / "regression.joblib")}
    assert load_serving_input_example(model.metadata) == {
        "dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 3.0], [2.0, 4.0]]}
    }


def test_saved_mlmodel_has_the_keys_mlflow_writes(tmp_path, mlflow_models, regression_artifact):
    save_model(
        tmp_path / "model",
        python_model=Doubler(),
        artifacts={"regression": str(regression_artifact)},
        signature=infer_signature(FRAME, FRAME, params={"factor": 2}),
        input_example=FRAME,
    )

    written, expected = mlmodel(tmp_path / "model"), mlmodel(mlflow_models / "day_models")
    assert set(written) == set(expected) - {"mlflow_version"}
    assert set(written["flavors"]["python_function"]) == set(expected["flavors"]["python_function"])
    pyfunc = written["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.model"
    assert pyfunc["python_model"] == "python_model.pkl"
    assert pyfunc["code"] is None
    assert pyfunc["artifacts"] == {
        "regression": {"path": "artifacts/regression.joblib", "uri": str(regression_artifact)}
    }
    assert written["saved_input_example_info"] == expected["saved_input_example_info"]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(
        p.name for p in (mlflow_models / "day_models").iterdir()
    )


def test_pickle_refers_to_mlflows_python_model_not_to_our_package(tmp_path):
    class Local(PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    save_model(tmp_path / "model", python_model=Local())

    opcodes = [str(arg) for _, arg, _ in pickletools.genops((tmp_path / "model" / "python_model.pkl").read_bytes())]
    assert "mlflow.pyfunc.model" in opcodes
    assert not any(arg.startswith("flavors") for arg in opcodes)
    assert "mlflow" not in sys.modules
    assert PythonModel.__module__ == "flavors.python_model"


def test_params_reach_predict(tmp_path):
    save_model(tmp_path / "model", python_model=Doubler())

    model = load_model(str(tmp_path / "model"))

    assert model.accepts_params is True
    assert model.predict(FRAME, {"factor": 10})["a"].tolist() == [10.0, 20.0]
    assert model.predict(FRAME)["a"].tolist() == [2.0, 4.0]


def test_predict_without_context_or_params_parameters_is_called_with_the_data_only(tmp_path):
    class Plain(PythonModel):
        def predict(self, model_input):
            return model_input + 1

    save_model(tmp_path / "model", python_model=Plain())

    model = load_model(str(tmp_path / "model"))

    assert model.accepts_params is False
    assert model.predict(FRAME, {"ignored": 1})["b"].tolist() == [4.0, 5.0]


def test_model_config_reaches_the_context(tmp_path):
    class Configured(PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * context.model_config["scale"]

    save_model(tmp_path / "model", python_model=Configured(), model_config={"scale": 3})

    assert load_model(str(tmp_path / "model")).predict(FRAME)["a"].tolist() == [3.0, 6.0]


def test_failing_load_context_is_a_load_error_naming_the_class(tmp_path):
    class Broken(PythonModel):
        def load_context(self, context):
            raise RuntimeError("no weights")

    save_model(tmp_path / "model", python_model=Broken())

    with pytest.raises(ModelLoadError, match="Broken.load_context failed.*no weights"):
        load_model(str(tmp_path / "model"))


def test_pickle_needing_other_mlflow_names_is_a_load_error_naming_them(tmp_path):
    save_model(tmp_path / "model", python_model=Doubler())
    # A pickle of mlflow.pyfunc.model.ChatModel, which we do not stand in for.
    (tmp_path / "model" / "python_model.pkl").write_bytes(b"cmlflow.pyfunc.model\nChatModel\n.")

    with pytest.raises(ModelLoadError, match=r"python_model.pkl needs mlflow.pyfunc.model.ChatModel"):
        load_model(str(tmp_path / "model"))


def write_code_model(tmp_path, source: str):
    path = tmp_path / f"code_model_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_models_from_code_written_for_mlflow_load_without_mlflow(tmp_path):
    code = write_code_model(tmp_path, """
        import mlflow
        from mlflow.pyfunc import PythonModel

        class AddOne(PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input + 1

        mlflow.models.set_model(AddOne())
    """)
    save_model(tmp_path / "model", python_model=code)

    model = load_model(str(tmp_path / "model"))

    assert model.predict(FRAME)["a"].tolist() == [2.0, 3.0]
    pyfunc = mlmodel(tmp_path / "model")["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert pyfunc["model_code_path"] == code.name
    assert (tmp_path / "model" / code.name).is_file()
    assert importlib.util.find_spec("mlflow") is None
    assert "mlflow" not in sys.modules


def test_models_from_code_may_set_a_plain_predict_function(tmp_path):
    code = write_code_model(tmp_path, """
        from flavors.python_model import set_model

        def predict(model_input, params=None):
            return model_input * (params or {}).get("factor", 1)

        set_model(predict)
    """)
    save_model(tmp_path / "model", python_model=code)

    model = load_model(str(tmp_path / "model"))

    assert model.accepts_params is True
    assert model.predict(FRAME, {"factor": 5})["b"].tolist() == [15.0, 20.0]


def test_models_from_code_file_that_sets_no_model_is_refused(tmp_path):
    code = write_code_model(tmp_path, "x = 1\n")

    with pytest.raises(ModelLoadError, match="did not call set_model"):
        save_model(tmp_path / "model", python_model=code)


def test_models_from_code_file_importing_other_mlflow_modules_is_a_load_error(tmp_path):
    code = write_code_model(tmp_path, "import mlflow.langchain\n")

    with pytest.raises(ModelLoadError, match="mlflow.langchain"):
        save_model(tmp_path / "model", python_model=code)
