"""Choosing the flavor from the python_function loader_module, including plug-in flavors."""
from __future__ import annotations

import textwrap
import uuid

import pytest
import yaml

from flavors import (
    Capabilities,
    FlavorPluginError,
    FlavorRegistry,
    LoadedModel,
    ModelLoadError,
    ModelMetadata,
    default_registry,
    load_model,
)
from flavors.base import ArrayInput


def write_mlmodel(model_dir, flavors):
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))
    return model_dir


def test_builtin_flavors_are_found_by_name_and_loader_module():
    registry = default_registry()

    assert registry.get("sklearn") is registry.for_loader_module("mlflow.sklearn")
    assert registry.get("python_function") is registry.for_loader_module("mlflow.pyfunc.model")
    assert registry.for_loader_module("mlflow.pyfunc.loaders.code_model").name == "python_function"


def test_unknown_loader_module_is_a_load_error_listing_the_known_ones(tmp_path):
    model_dir = write_mlmodel(tmp_path / "m", {"python_function": {"loader_module": "mlflow.catboost"}})

    with pytest.raises(ModelLoadError, match=r"'mlflow.catboost'; known loader modules: .*mlflow\.onnx.*mlflow\.sklearn"):
        load_model(str(model_dir))


def test_model_without_python_function_flavor_is_a_load_error(tmp_path):
    model_dir = write_mlmodel(tmp_path / "m", {"sklearn": {"pickled_model": "model.pkl"}})

    with pytest.raises(ModelLoadError, match=r"no python_function flavor \(flavors: sklearn\)"):
        load_model(str(model_dir))


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a distribution with a scoring_server.flavors entry point onto sys.path."""

    def install(entry_point: str, module_source: str) -> str:
        module = f"toy_flavor_{uuid.uuid4().hex[:8]}"
        site = tmp_path / "site"
        dist_info = site / f"{module}-0.1.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        (dist_info / "entry_points.txt").write_text(f"[scoring_server.flavors]\ntoy = {module}:{entry_point}\n")
        (site / f"{module}.py").write_text(module_source)
        monkeypatch.syspath_prepend(str(site))
        default_registry.cache_clear()
        return module

    yield install
    default_registry.cache_clear()


TOY_FLAVOR = textwrap.dedent("""
    from flavors import Capabilities

    class ToyPredictor:
        capabilities = Capabilities(row_independent=True, accepts_params=True)

        def __init__(self, answer):
            self.answer = answer

        def predict(self, data, params=None):
            return [self.answer] * len(data)

    class ToyFlavor:
        name = "toy"
        loader_modules = ("toy.loader",)

        def load(self, metadata):
            return ToyPredictor(metadata.pyfunc_conf["answer"])
""")


def test_entry_point_plugin_flavor_loads_its_models(tmp_path, install_plugin):
    install_plugin("ToyFlavor", TOY_FLAVOR)
    model_dir = write_mlmodel(tmp_path / "m", {"python_function": {"loader_module": "toy.loader", "answer": 42}})

    model = load_model(str(model_dir))

    assert default_registry().get("toy").loader_modules == ("toy.loader",)
    assert model.flavor == "toy"
    assert model.predict([1, 2, 3]) == [42, 42, 42]
    assert model.row_independent is True
    assert model.accepts_params is True


def test_entry_point_may_name_a_flavor_instance(install_plugin):
    install_plugin("INSTANCE", TOY_FLAVOR + "\nINSTANCE = ToyFlavor()\n")

    registry = FlavorRegistry()
    registry.load_entry_points()

    assert registry.for_loader_module("toy.loader").name == "toy"


def test_entry_point_that_is_not_a_flavor_is_a_plugin_error(install_plugin):
    install_plugin("NotAFlavor", "class NotAFlavor:\n    name = 'x'\n")

    with pytest.raises(FlavorPluginError, match="is not a Flavor"):
        default_registry()


def test_entry_point_that_fails_to_import_is_a_plugin_error(install_plugin):
    install_plugin("Missing", "")

    with pytest.raises(FlavorPluginError, match="toy = .*:Missing failed to load"):
        default_registry()


class UndeclaredPredictor:
    """A plug-in predictor from before Capabilities: its old-style attributes are not trusted."""

    row_independent = True
    array_input = ArrayInput(2)

    def predict(self, data, params=None):
        return data


class NoParamsPredictor:
    def predict(self, data):
        return data


def test_predictor_without_capabilities_gets_the_conservative_default(tmp_path):
    metadata = ModelMetadata(path=tmp_path, flavors={})

    model = LoadedModel.from_predictor(metadata, UndeclaredPredictor(), "toy")
    no_params = LoadedModel.from_predictor(metadata, NoParamsPredictor(), "toy")

    assert model.capabilities == Capabilities(row_independent=False, accepts_params=True, array_input=None)
    assert (model.row_independent, model.accepts_params, model.array_input) == (False, True, None)
    assert no_params.capabilities == Capabilities()
    assert no_params.predict([1], {"ignored": True}) == [1]


def test_predictor_capabilities_of_the_wrong_type_are_a_plugin_error(tmp_path):
    predictor = NoParamsPredictor()
    predictor.capabilities = {"row_independent": True}

    with pytest.raises(FlavorPluginError, match="NoParamsPredictor.capabilities must be a flavors.base.Capabilities"):
        LoadedModel.from_predictor(ModelMetadata(path=tmp_path, flavors={}), predictor, "toy")
