"""The model catalog's loading rules, in-process: sources, the LRU cache, failures, following."""
from __future__ import annotations

import gc
import shutil
import threading
import weakref

import pytest

from scoring_server.catalog.cache import LoadedModels
from scoring_server.catalog.catalog import ModelCatalog
from scoring_server.catalog.follower import ReferenceFollower
from scoring_server.catalog.loading import ModelIdentity
from scoring_server.catalog.roots import AllowedRoots
from scoring_server.catalog.sources import AdminChanges, ModelSources
from scoring_server.config import ModelEntry
from scoring_server.errors import ScoringError
from scoring_server.pipeline import BatchingPolicy, Scorer
from scoring_server.registry import ModelRegistry

from ..conftest import FIXTURES

ENTRIES = [ModelEntry(f"m{i}", str(FIXTURES / ("iris" if i % 2 else "iris_nosig"))) for i in range(5)]
ROW = (b'{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], '
       b'"data": [[5.1, 3.5, 1.4, 0.2]]}}')


def catalog(entries=ENTRIES, max_loaded: int = 10, max_memory_mb: float | None = None,
            registry_root: str | None = None, batching: BatchingPolicy | None = None, **sources) -> ModelCatalog:
    return ModelCatalog(
        ModelSources(entries, registry_root, **sources),
        lambda model, identity, entry: Scorer(model, identity=identity, batching=batching),
        LoadedModels(max_loaded, max_memory_mb), ReferenceFollower(registry_root, poll_seconds=60),
    )


def loaded(cat: ModelCatalog) -> list[str]:
    return [m["name"] for m in cat.status() if m["loaded"]]


def test_least_recently_used_is_unloaded_first():
    cat = catalog(max_loaded=2)
    cat.scorer("m0"), cat.scorer("m1"), cat.scorer("m0"), cat.scorer("m2")
    assert loaded(cat) == ["m0", "m2"]


def test_memory_budget_unloads_down_to_the_model_in_use():
    cat = catalog(max_memory_mb=1)
    for name in ("m0", "m1", "m2"):
        cat.scorer(name)
        assert loaded(cat) == [name]


def test_a_failure_is_remembered_for_the_retry_time(tmp_path):
    model_dir = tmp_path / "later"
    cat = ModelCatalog(ModelSources([ModelEntry("later", str(model_dir))]), lambda m, i, e: Scorer(m),
                       LoadedModels(2), ReferenceFollower(None, 60), retry_seconds=3600)
    with pytest.raises(ScoringError) as first:
        cat.scorer("later")
    shutil.copytree(FIXTURES / "iris", model_dir)  # loadable now, but the failure is remembered
    with pytest.raises(ScoringError) as second:
        cat.scorer("later")
    assert first.value.status == second.value.status == 503 and second.value.message == first.value.message
    cat.retry_seconds = 0
    assert cat.scorer("later").model.flavor == "sklearn"  # past the retry time it is loaded


def test_unloaded_models_are_closed_and_garbage_collected():
    """With batching (threaded workers) every unloaded model is freed: no batching thread or
    closure keeps it alive."""
    cat = catalog(max_loaded=1, batching=BatchingPolicy(8, 1.0, wait_timeout=10))
    models = []
    for round_ in range(3):
        for name in ("m1", "m3"):
            scorer = cat.scorer(name)
            assert scorer.score(ROW, "application/json") == b'{"predictions":[0]}'
            models.append(weakref.ref(scorer.model))
            del scorer
    for thread in threading.enumerate():  # closed batchers end their threads; the idle one ends too
        if thread.name == "adaptive-batcher":
            thread.join(timeout=10)
    gc.collect()
    alive = [ref for ref in models if ref() is not None]
    assert len(alive) == 1 and alive[0]() is cat.cache.get("m3").scorer.model


def test_a_followed_model_is_reloaded_only_when_its_reference_moves(tmp_path):
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("alpha", str(FIXTURES / "iris"))
    registry.register("alpha", str(FIXTURES / "iris_nosig"))
    registry.transition("alpha", 1, "Production")
    cat = catalog([ModelEntry("tuesday", "models:/alpha/Production")], registry_root=str(registry.root))
    first = cat.scorer("tuesday")
    assert cat.follower.check() == []
    assert cat.scorer("tuesday") is first  # served under another name than the registered one: no reload
    registry.transition("alpha", 2, "Production")
    assert cat.follower.check() == ["tuesday"]
    assert cat.scorer("tuesday").identity == ModelIdentity("tuesday", "2", registry.get_version("alpha", 2).uuid)


def test_models_registered_after_start_are_served_after_the_next_poll(tmp_path):
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("first", str(FIXTURES / "iris"))
    registry.transition("first", 1, "Production")
    cat = catalog([], registry_root=str(registry.root), follow_registry=True)
    assert cat.names() == ["first"]
    registry.register("second", str(FIXTURES / "iris"))
    registry.transition("second", 1, "Production")
    assert cat.names() == ["first"]
    cat.follower.check()
    assert cat.names() == ["first", "second"]
    assert cat.scorer("second").identity == ModelIdentity("second", "1", registry.get_version("second", 1).uuid)


def test_admin_changes_reach_every_worker_and_unload_the_model(tmp_path):
    """Two catalogs sharing one changes folder stand for two workers of one server."""
    admin = AdminChanges(tmp_path / "changes")
    (tmp_path / "changes").mkdir()
    workers = [catalog(ENTRIES[:1], admin=AdminChanges(admin.folder, AllowedRoots([FIXTURES])))
               for _ in range(2)]
    workers[0].add(ModelEntry("extra", str(FIXTURES / "iris")))
    assert workers[1].names() == ["extra", "m0"]
    with pytest.raises(ScoringError) as taken:
        workers[1].add(ModelEntry("extra", str(FIXTURES / "iris")))
    assert taken.value.status == 409
    workers[1].scorer("m0")
    workers[0].remove("m0")
    assert loaded(workers[1]) == [] and workers[1].names() == ["extra"]
    with pytest.raises(ScoringError) as gone:
        workers[1].scorer("m0")
    assert gone.value.status == 404
