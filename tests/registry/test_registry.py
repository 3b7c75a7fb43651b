"""The registry, embedded and on PostgreSQL: versions, stages, aliases, tags, URIs, and bad input."""
from __future__ import annotations

import shutil

import pytest

from flavors import ModelLoadError, load_model, resolve_model_uri
from scoring_server.registry import ModelRegistry, RegistryError, parse_models_uri

from ..conftest import FIXTURES, results_of_processes
from .postgres_server import postgres_server, postgres_uri, registry_location  # noqa: F401 - fixtures

IRIS, NOSIG = str(FIXTURES / "iris"), str(FIXTURES / "iris_nosig")


@pytest.fixture
def registry(registry_location):
    uri, artifact_root = registry_location
    return ModelRegistry(uri, artifact_root=artifact_root)


def test_versions_count_up_per_name_and_copy_the_directory(registry, tmp_path):
    source = tmp_path / "model"
    shutil.copytree(IRIS, source)
    first = registry.register("iris", str(source), description="first")
    second = registry.register("iris", NOSIG)
    other = registry.register("other", NOSIG)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    (source / "MLmodel").write_text("garbage")  # later edits to the source change nothing registered
    assert load_model(first.path).predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]
    assert registry.get_version("iris", 1).description == "first"


def test_stages_archive_existing_and_resolution(registry):
    for _ in range(3):
        registry.register("iris", IRIS)
    registry.transition("iris", 1, "production")
    registry.transition("iris", 2, "Production")
    assert registry.resolve_uri("models:/iris/PRODUCTION").version == 2
    registry.transition("iris", 3, "production", archive_existing=True)
    assert [v.stage for v in registry.list_versions("iris")] == ["Archived", "Archived", "Production"]
    assert registry.resolve_uri("models:/iris/latest").version == 3
    assert registry.resolve_uri("models:/iris/1").version == 1


def test_aliases_point_and_protect_versions(registry):
    registry.register("iris", IRIS)
    registry.register("iris", IRIS)
    registry.set_alias("iris", "champion", 1)
    assert registry.resolve_uri("models:/iris@champion").version == 1
    registry.set_alias("iris", "champion", 2)
    assert registry.get_model("iris").aliases == {"champion": 2}
    with pytest.raises(RegistryError, match="alias"):
        registry.delete_version("iris", 2)
    registry.delete_alias("iris", "champion")
    registry.delete_version("iris", 2)
    assert [v.version for v in registry.list_versions("iris")] == [1]


def test_tags_and_descriptions(registry):
    registry.register("iris", IRIS)
    registry.set_tag("iris", "team", "fraud")
    registry.set_tag("iris", "validated", "yes", version=1)
    registry.describe("iris", "the iris model")
    registry.describe("iris", "first cut", version=1)
    model, version = registry.get_model("iris"), registry.get_version("iris", 1)
    assert (model.tags, model.description) == ({"team": "fraud"}, "the iris model")
    assert (version.tags, version.description) == ({"validated": "yes"}, "first cut")


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda r: r.get_model("nope"), "does not exist"),
        (lambda r: r.get_version("iris", 9), "no version 9"),
        (lambda r: r.transition("iris", 1, "Prod"), "unknown stage"),
        (lambda r: r.register("bad/name", IRIS), "invalid model name"),
        (lambda r: r.register("iris\n", IRIS), "invalid model name"),
        (lambda r: r.set_alias("iris", "champion\n", 1), "invalid alias"),
        (lambda r: r.register("iris", "/nonexistent"), "cannot register"),
        (lambda r: r.set_alias("iris", "v3", 1), "invalid alias"),
        (lambda r: r.set_alias("iris", "latest", 1), "invalid alias"),
        (lambda r: r.set_alias("iris", "champion", 7), "no version 7"),
        (lambda r: r.delete_alias("iris", "ghost"), "no alias"),
        (lambda r: r.resolve_uri("models:/iris/Staging"), "no version in stage Staging"),
        (lambda r: r.resolve_uri("models:/iris@ghost"), "no alias"),
        (lambda r: r.resolve_uri("models:/iris"), "invalid model registry URI"),
        (lambda r: r.create_model("iris"), "already exists"),
    ],
)
def test_bad_requests_are_clear_errors_and_change_nothing(registry, action, message):
    registry.register("iris", IRIS)
    with pytest.raises(RegistryError, match=message):
        action(registry)
    assert [(v.version, v.stage) for v in registry.list_versions("iris")] == [(1, "None")]


def test_uri_forms():
    assert parse_models_uri("models:/m/3").version == 3
    assert parse_models_uri("models:/m/staging").stage == "Staging"
    assert parse_models_uri("models:/m@champ").alias == "champ"
    assert parse_models_uri("models:/m/latest").moving and not parse_models_uri("models:/m/3").moving


def test_models_uris_resolve_for_every_model_loader(registry, registry_location, monkeypatch):
    registry.register("iris", IRIS)
    uri, artifact_root = registry_location
    monkeypatch.setenv("SCORING_SERVER_REGISTRY_URI", uri)
    if artifact_root:
        monkeypatch.setenv("SCORING_SERVER_ARTIFACT_ROOT", artifact_root)
    import scoring_server.registry  # noqa: F401 - registers the scheme

    assert resolve_model_uri("models:/iris/1") == resolve_model_uri(registry.get_version("iris", 1).path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model_uri("models:/ghost/1")


def _register_one(uri: str, artifact_root: str | None, queue) -> None:
    queue.put(ModelRegistry(uri, artifact_root=artifact_root).register("race", NOSIG).version)


def test_concurrent_registrations_get_distinct_versions(registry_location):
    ModelRegistry(registry_location[0], artifact_root=registry_location[1])
    assert sorted(results_of_processes(_register_one, registry_location, 8)) == list(range(1, 9))
    versions = ModelRegistry(registry_location[0], artifact_root=registry_location[1]).list_versions("race")
    assert [v.version for v in versions] == list(range(1, 9)) and {v.status for v in versions} == {"READY"}
    assert all(load_model(v.path).predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0] for v in versions)
