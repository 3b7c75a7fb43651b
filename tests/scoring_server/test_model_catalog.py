"""The model catalog's loading rules, in-process."""
from __future__ import annotations

import pytest

from scoring_server.errors import ScoringError
from scoring_server.model_catalog import ModelCatalog, ModelEntry, entries_from_file
from scoring_server.model_source import ModelIdentity
from scoring_server.pipeline import Scorer

from ..conftest import FIXTURES

ENTRIES = [ModelEntry(f"m{i}", str(FIXTURES / ("iris" if i % 2 else "iris_nosig"))) for i in range(5)]


def catalog(**options) -> ModelCatalog:
    return ModelCatalog(ENTRIES, lambda model, identity, entry: Scorer(model, identity=identity), **options)


def loaded(cat: ModelCatalog) -> list[str]:
    return [m["name"] for m in cat.status() if m["loaded"]]


def test_least_recently_used_is_unloaded_first(tmp_path):
    cat = catalog(max_loaded=2, changes_path=tmp_path / "changes.json")
    cat.scorer("m0"), cat.scorer("m1"), cat.scorer("m0"), cat.scorer("m2")
    assert loaded(cat) == ["m0", "m2"]


def test_memory_budget_unloads_down_to_the_model_in_use(tmp_path):
    cat = catalog(max_loaded=5, max_memory_mb=1, changes_path=tmp_path / "changes.json")
    for name in ("m0", "m1", "m2"):
        cat.scorer(name)
        assert loaded(cat) == [name]


def test_failures_are_remembered_then_retried(tmp_path):
    cat = ModelCatalog([ModelEntry("ghost", str(tmp_path / "missing"))], lambda m, i, e: Scorer(m),
                       max_loaded=2, retry_seconds=0, changes_path=tmp_path / "changes.json")
    for _ in range(2):
        with pytest.raises(ScoringError) as raised:
            cat.scorer("ghost")
        assert raised.value.status == 503


def test_models_file_errors_name_the_model(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  a: {url: x}\n")
    with pytest.raises(ValueError, match="'a' needs a uri"):
        entries_from_file(path)
    path.write_text("models:\n  a: {uri: x, colour: red}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        entries_from_file(path)


def test_a_followed_model_is_reloaded_only_when_its_reference_moves(tmp_path):
    from scoring_server.registry import ModelRegistry

    registry = ModelRegistry(tmp_path / "registry")
    registry.register("alpha", str(FIXTURES / "iris"))
    registry.register("alpha", str(FIXTURES / "iris_nosig"))
    registry.transition("alpha", 1, "Production")
    cat = ModelCatalog([ModelEntry("tuesday", "models:/alpha/Production")],
                       lambda model, identity, entry: Scorer(model, identity=identity), max_loaded=2,
                       registry_root=str(registry.root), changes_path=tmp_path / "changes.json")
    first = cat.scorer("tuesday")
    cat.refresh()
    assert cat.scorer("tuesday") is first  # served under another name than the registered one: no reload
    registry.transition("alpha", 2, "Production")
    cat.refresh()
    assert cat.scorer("tuesday").identity == ModelIdentity("tuesday", "2")
