"""Finding the model directory and reading MLmodel: clear errors for unusable input."""
from __future__ import annotations

import json

import pytest
import yaml

from flavors import ModelLoadError, load_model, load_serving_input_example, read_mlmodel, resolve_model_uri


def test_relative_path_resolves_to_an_absolute_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    assert resolve_model_uri("models/iris") == tmp_path / "models" / "iris"


def test_home_directory_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))

    assert resolve_model_uri("~/iris") == tmp_path / "iris"


def test_file_uri_with_absolute_path_and_percent_encoding(tmp_path):
    assert resolve_model_uri(f"file://{tmp_path}/my%20model") == tmp_path / "my model"
    assert resolve_model_uri(f"file://localhost{tmp_path}/m") == tmp_path / "m"
    assert resolve_model_uri(f"file:{tmp_path}/m") == tmp_path / "m"


def test_file_uri_with_relative_path(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    assert resolve_model_uri("file:models/iris") == tmp_path / "models" / "iris"


def test_file_uri_naming_another_host_is_refused():
    with pytest.raises(ModelLoadError, match="host 'server'"):
        resolve_model_uri("file://server/models/iris")


@pytest.mark.parametrize("uri", ["s3://bucket/models/iris", "runs:/abc/model", "HTTPS://x/y"])
def test_unsupported_uri_schemes_are_refused_naming_the_scheme(uri):
    scheme = uri.split(":")[0].lower()

    with pytest.raises(ModelLoadError, match=f"scheme '{scheme}:' is not supported"):
        resolve_model_uri(uri)


def test_load_model_accepts_a_file_uri(mlflow_models, first_iris_row):
    model = load_model((mlflow_models / "iris").as_uri())

    assert model.predict(first_iris_row).tolist() == [0]


def test_missing_model_directory_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        load_model(str(tmp_path / "nowhere"))


def test_directory_without_mlmodel_is_a_load_error_naming_it(tmp_path):
    with pytest.raises(ModelLoadError, match=f"no MLmodel file in model directory {tmp_path}"):
        read_mlmodel(tmp_path)


def test_invalid_yaml_is_a_load_error_naming_the_file(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: [unclosed\n")

    with pytest.raises(ModelLoadError, match=f"{tmp_path / 'MLmodel'} is not valid YAML"):
        read_mlmodel(tmp_path)


@pytest.mark.parametrize("content", ["just a string\n", "model_uuid: abc\n", "flavors: {}\n"])
def test_mlmodel_without_flavors_is_a_load_error(tmp_path, content):
    (tmp_path / "MLmodel").write_text(content)

    with pytest.raises(ModelLoadError, match="MLmodel"):
        read_mlmodel(tmp_path)


def test_invalid_signature_is_a_load_error(copy_fixture):
    model_dir = copy_fixture("iris")
    raw = yaml.safe_load((model_dir / "MLmodel").read_text())
    raw["signature"]["inputs"] = "[not json"
    (model_dir / "MLmodel").write_text(yaml.safe_dump(raw))

    with pytest.raises(ModelLoadError, match="invalid signature"):
        read_mlmodel(model_dir)


def test_metadata_exposes_the_mlmodel_fields(mlflow_models):
    metadata = read_mlmodel(mlflow_models / "day_models")

    assert metadata.path == mlflow_models / "day_models"
    assert metadata.pyfunc_conf["loader_module"] == "mlflow.pyfunc.model"
    assert metadata.signature.params.names() == ["day_of_week"]
    assert metadata.utc_time_created == "2026-11-23 03:59:35.389126"
    assert metadata.raw["model_size_bytes"] == 4694


def test_serving_example_is_built_from_input_example_when_no_serving_file(copy_fixture):
    model_dir = copy_fixture("iris")
    raw = yaml.safe_load((model_dir / "MLmodel").read_text())
    del raw["saved_input_example_info"]["serving_input_path"]
    (model_dir / "MLmodel").write_text(yaml.safe_dump(raw))
    (model_dir / "serving_input_example.json").unlink()

    example = load_serving_input_example(read_mlmodel(model_dir))

    assert example == {"dataframe_split": json.loads((model_dir / "input_example.json").read_text())}
