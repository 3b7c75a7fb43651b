"""scikit-learn models: the save API writes MLflow's layout, the loader reads it back."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
import uuid
from importlib.metadata import version

import numpy as np
import pytest
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.naive_bayes import GaussianNB

from flavors import LoadingPolicy, ModelLoadError, UntrustedTypesError, load_model
from flavors.errors import UntrustedSkopsTypesError
from flavors.signature import infer_signature
from flavors.sklearn import save_model
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def classifier(iris):
    features, target = iris
    return LogisticRegression(max_iter=500).fit(features, target)


def mlmodel(model_dir):
    return yaml.safe_load((model_dir / "MLmodel").read_text())


@pytest.mark.parametrize("serialization_format", ["cloudpickle", "pickle", "skops"])
def test_saved_model_loads_back_and_predicts_like_the_estimator(tmp_path, iris, classifier, serialization_format):
    features, _ = iris
    save_model(classifier, tmp_path / "model", serialization_format=serialization_format)

    model = load_model(str(tmp_path / "model"))

    assert model.flavor == "sklearn"
    np.testing.assert_array_equal(model.predict(features), classifier.predict(features))


@pytest.mark.parametrize(
    ("serialization_format", "model_file"), [("cloudpickle", "model.pkl"), ("pickle", "model.pkl"), ("skops", "model.skops")]
)
def test_saved_mlmodel_has_the_keys_mlflow_writes(tmp_path, mlflow_models, iris, classifier, serialization_format, model_file):
    features, _ = iris
    save_model(
        classifier,
        tmp_path / "model",
        serialization_format=serialization_format,
        signature=infer_signature(features, classifier.predict(features)),
        input_example=features.head(3),
    )

    written, expected = mlmodel(tmp_path / "model"), mlmodel(mlflow_models / "iris")
    assert set(written) == set(expected) - {"mlflow_version"}
    assert set(written["flavors"]) == {"python_function", "sklearn"}
    for flavor in ("python_function", "sklearn"):
        assert set(written["flavors"][flavor]) == set(expected["flavors"][flavor])
    assert written["flavors"]["sklearn"]["pickled_model"] == model_file
    assert written["flavors"]["sklearn"]["serialization_format"] == serialization_format
    assert written["flavors"]["python_function"]["model_path"] == model_file
    assert written["saved_input_example_info"] == expected["saved_input_example_info"]
    assert len(written["model_uuid"]) == 32
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(
        ["MLmodel", model_file, "conda.yaml", "python_env.yaml", "requirements.txt",
         "input_example.json", "serving_input_example.json"]
    )


def test_input_example_files_match_mlflows_byte_for_byte(tmp_path, mlflow_models, iris, classifier):
    features, _ = iris
    save_model(classifier, tmp_path / "model", input_example=features.head(3))

    for name in ("input_example.json", "serving_input_example.json"):
        assert (tmp_path / "model" / name).read_text() == (mlflow_models / "iris" / name).read_text()


def test_numpy_input_example_is_saved_as_ndarray_inputs(tmp_path, classifier, iris):
    features, _ = iris
    save_model(classifier, tmp_path / "model", input_example=features.to_numpy()[:2])

    info = mlmodel(tmp_path / "model")["saved_input_example_info"]
    assert info["type"] == "ndarray"
    serving = json.loads((tmp_path / "model" / "serving_input_example.json").read_text())
    assert serving == {"inputs": features.to_numpy()[:2].tolist()}


def test_signature_round_trips_through_mlmodel(tmp_path, iris, classifier):
    features, _ = iris
    signature = infer_signature(features, classifier.predict(features))
    save_model(classifier, tmp_path / "model", signature=signature)

    assert load_model(str(tmp_path / "model")).metadata.signature == signature


def test_requirements_pin_installed_versions_of_the_model_libraries(tmp_path, classifier):
    save_model(classifier, tmp_path / "model", serialization_format="skops")

    requirements = (tmp_path / "model" / "requirements.txt").read_text().splitlines()
    assert requirements == sorted(
        f"{name}=={version(name)}" for name in ["numpy", "pandas", "scikit-learn", "scipy", "skops"]
    )
    conda = yaml.safe_load((tmp_path / "model" / "conda.yaml").read_text())
    assert conda["dependencies"][-1] == {"pip": requirements}


def test_pip_requirements_replace_the_defaults(tmp_path, classifier):
    save_model(classifier, tmp_path / "model", pip_requirements=["scikit-learn==1.9.1"])

    assert (tmp_path / "model" / "requirements.txt").read_text() == "scikit-learn==1.9.1"


def test_saving_into_a_non_empty_directory_is_refused(tmp_path, classifier):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("x")

    with pytest.raises(FileExistsError):
        save_model(classifier, tmp_path / "model")


def test_predict_fn_predict_proba_returns_probabilities(tmp_path, first_iris_row, classifier):
    save_model(classifier, tmp_path / "model", predict_fn="predict_proba")

    probabilities = load_model(str(tmp_path / "model")).predict(first_iris_row)

    assert probabilities.shape == (1, 3)
    assert probabilities.argmax() == 0


def test_predict_fn_naming_a_missing_method_is_a_load_error(tmp_path, classifier):
    save_model(classifier, tmp_path / "model")
    conf = mlmodel(tmp_path / "model")
    conf["flavors"]["python_function"]["predict_fn"] = "predict_joint_log_proba"
    (tmp_path / "model" / "MLmodel").write_text(yaml.safe_dump(conf))

    with pytest.raises(ModelLoadError, match="predict_joint_log_proba"):
        load_model(str(tmp_path / "model"))


def test_missing_model_file_is_a_load_error_naming_it(tmp_path, classifier):
    save_model(classifier, tmp_path / "model")
    (tmp_path / "model" / "model.pkl").unlink()

    with pytest.raises(ModelLoadError, match="model.pkl"):
        load_model(str(tmp_path / "model"))


@pytest.fixture
def custom_transformer_module(tmp_path):
    """A module (unique name, outside sys.path) with a transformer skops does not trust by default."""
    name = f"custom_scaling_{uuid.uuid4().hex}"
    source = tmp_path / "src" / f"{name}.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent("""
        from sklearn.base import BaseEstimator, TransformerMixin

        class Doubler(TransformerMixin, BaseEstimator):
            def fit(self, X, y=None):
                return self

            def transform(self, X):
                return X * 2
    """))
    return name, source


@pytest.fixture
def pipeline_with_custom_step(monkeypatch, iris, custom_transformer_module):
    name, source = custom_transformer_module
    monkeypatch.syspath_prepend(str(source.parent))
    module = importlib.import_module(name)
    features, target = iris
    return make_pipeline(module.Doubler(), GaussianNB()).fit(features, target)


def test_saving_as_skops_refuses_types_skops_does_not_trust_naming_them_and_writes_nothing(
    tmp_path, custom_transformer_module, pipeline_with_custom_step
):
    """MLflow 3.17 refuses such a model at save time ("set the 'skops_trusted_types' parameter")."""
    name, source = custom_transformer_module

    with pytest.raises(UntrustedSkopsTypesError, match=rf"skops_trusted_types=\['{name}.Doubler'\]") as raised:
        save_model(pipeline_with_custom_step, tmp_path / "model", serialization_format="skops", code_paths=[source])

    assert raised.value.types == [f"{name}.Doubler"]
    assert not (tmp_path / "model").exists()


def test_saving_a_forest_as_skops_needs_the_tree_type_trusted(tmp_path, iris):
    features, target = iris
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(features, target)

    with pytest.raises(UntrustedSkopsTypesError, match="sklearn.tree._tree.Tree"):
        save_model(forest, tmp_path / "refused", serialization_format="skops")
    save_model(forest, tmp_path / "model", serialization_format="skops", skops_trusted_types=["sklearn.tree._tree.Tree"])

    model = load_model(str(tmp_path / "model"), policy=LoadingPolicy(skops_trusted_types={"sklearn.tree._tree.Tree"}))
    np.testing.assert_array_equal(model.predict(features), forest.predict(features))


def test_skops_model_with_an_untrusted_type_is_refused_naming_the_type(
    tmp_path, custom_transformer_module, pipeline_with_custom_step
):
    """A skops file needing types its MLmodel does not list (written by another tool) is refused."""
    name, source = custom_transformer_module
    save_model(pipeline_with_custom_step, tmp_path / "model", serialization_format="skops", code_paths=[source],
               skops_trusted_types=[f"{name}.Doubler"])
    conf = mlmodel(tmp_path / "model")
    conf["flavors"]["sklearn"]["skops_trusted_types"] = None
    (tmp_path / "model" / "MLmodel").write_text(yaml.safe_dump(conf))

    with pytest.raises(UntrustedTypesError, match=f"{name}.Doubler") as raised:
        load_model(str(tmp_path / "model"))
    assert raised.value.types == [f"{name}.Doubler"]


def test_skops_model_loads_when_the_loading_policy_trusts_its_types(
    tmp_path, iris, custom_transformer_module, pipeline_with_custom_step
):
    """MLflow writes the types into MLmodel; only the loader's policy can grant them (the model's own
    list is refused on its own: tests/security/test_safe_loading.py)."""
    name, source = custom_transformer_module
    features, _ = iris
    save_model(
        pipeline_with_custom_step,
        tmp_path / "model",
        serialization_format="skops",
        skops_trusted_types=[f"{name}.Doubler"],
        code_paths=[source],
    )

    model = load_model(str(tmp_path / "model"), policy=LoadingPolicy(skops_trusted_types={f"{name}.Doubler"}))

    assert model.model_format == "skops"
    np.testing.assert_array_equal(model.predict(features), pipeline_with_custom_step.predict(features))


def test_pickled_model_imports_its_classes_from_the_models_code_directory(
    tmp_path, monkeypatch, iris, custom_transformer_module, pipeline_with_custom_step
):
    name, source = custom_transformer_module
    features, _ = iris
    save_model(pipeline_with_custom_step, tmp_path / "model", code_paths=[source])
    # Forget the module and where it came from: only the model's code/ directory can provide it now.
    monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(source.parent)])

    model = load_model(str(tmp_path / "model"))

    assert mlmodel(tmp_path / "model")["flavors"]["sklearn"]["code"] == "code"
    np.testing.assert_array_equal(model.predict(features), pipeline_with_custom_step.predict(features))


def test_array_input_is_promised_only_for_plain_sklearn_estimators(tmp_path, iris):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import StandardScaler

    from flavors import load_model

    features, target = iris
    plain = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)
    by_name = make_pipeline(
        ColumnTransformer([("scale", StandardScaler(), list(features.columns))]), LogisticRegression(max_iter=500)
    ).fit(features, target)
    save_model(plain, tmp_path / "plain")
    save_model(by_name, tmp_path / "by_name")
    promise = load_model(str(tmp_path / "plain")).array_input
    assert promise.column_names == tuple(features.columns)
    assert promise.matches(list(features.columns)) and not promise.matches(list(features.columns)[::-1])
    assert load_model(str(tmp_path / "by_name")).array_input is None
    np.testing.assert_array_equal(load_model(str(tmp_path / "plain")).predict(features.to_numpy()),
                                  plain.predict(features))


def test_a_skops_model_loads_without_importing_torch_which_stays_importable():
    """skops.io's import walks every scikit-learn package, torch's array-API wrapper among them: loading
    a scikit-learn model must not import torch (1 s and 120 MiB a worker) where it is installed."""
    code = ("import sys; from flavors import load_model; load_model(sys.argv[1]); "
            "print('torch' in sys.modules); import torch; print(torch.ones(2).sum().item())")
    done = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "iris")], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["False", "2.0"], done.stderr
