"""The Flask application factory: nothing happens at import time."""
from __future__ import annotations

import logging
import os

from flask import Flask

from flavors import LoadedModel

from .catalog.cache import LoadedModels
from .catalog.catalog import ModelCatalog
from .catalog.follower import ReferenceFollower
from .catalog.loading import (ModelIdentity, import_shared_modules, is_moving_reference, load_served_model,
                              loading_policy)
from .catalog.slot import ModelSlot
from .catalog.sources import ModelSources, admin_changes, entries_from_root
from .config import ModelEntry, ServerConfig, load_config, read_models_file
from .error_handlers import register_error_handlers
from .monitoring import Observers
from .monitoring.install import install_monitoring
from .pipeline import BatchingPolicy, Scorer
from .registry.registry import ARTIFACT_ROOT_ENV
from .routes import health, models, openapi, scoring, slashes
from .security import auth, cors
from .serving_input_check import check_serving_input_example

_logger = logging.getLogger(__name__)


def create_app(config: ServerConfig | None = None, model: LoadedModel | None = None) -> Flask:
    """Build a scoring app; the model is loaded here (once per process) unless one is given.

    A server of many models (``--models``, ``--model-root``, ``--registry-models``) loads its
    models on demand in each worker instead. Moving registry references are followed by the
    app's :class:`ReferenceFollower`, started in each worker by ``server.start_worker``.
    """
    config = config or load_config()
    logging.getLogger("scoring_server").setLevel(config.log_level.upper())
    if config.artifact_root:  # read by every ModelRegistry of this process and its workers, as models:/ URIs need
        os.environ[ARTIFACT_ROOT_ENV] = config.artifact_root
    app = Flask("scoring_server")
    app.url_map.merge_slashes = False  # "//invocations" is no route (a 404, as MLflow answers)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.config["SCORING_SERVER"] = config
    app.extensions["observers"] = Observers()
    app.extensions["worker_start"] = []  # run in each worker after the fork (server.start_worker)
    app.extensions["decode_limits"] = scoring.decode_limits(config)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(scoring.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(slashes.blueprint)
    register_error_handlers(app)
    cors.install(app, config)  # first: a listed origin's preflight needs no key
    auth.install(app, config)  # API keys and scopes, before any model is loaded
    install_monitoring(app, config)  # observers first: the model loads below are reported
    if config.multi_model and model is None:
        _serve_catalog(app, config)
    else:
        _serve_one(app, config, model)
    return app


def close_app(app: Flask) -> None:
    """Remove what the app made for the server's lifetime (called once, by the server's master)."""
    catalog = app.extensions.get("model_catalog")
    if catalog is not None and catalog.sources.admin is not None:
        catalog.sources.admin.delete()


def batching_policy(model: LoadedModel, config: ServerConfig) -> BatchingPolicy | None:
    """Batching when the model's rows are independent and the worker brings concurrent requests
    together: on its event loop (the thread worker), or on its threads."""
    wanted = config.batching == "on" or (config.batching == "auto" and model.row_independent)
    if (config.worker_class == "sync" and config.threads < 2) or not wanted:
        return None
    return BatchingPolicy(config.max_batch_size, config.max_batch_time_ms, wait_timeout=config.request_timeout,
                          threads=config.threads > 1)


def _serve_one(app: Flask, config: ServerConfig, model: LoadedModel | None) -> None:
    if model is not None:
        identity = ModelIdentity(model.metadata.path.name)
    elif config.model_uri:
        _logger.info("Loading model %s", config.model_uri)
        model, identity = load_served_model(config.model_uri, config.registry_uri, loading_policy(config),
                                            observers=app.extensions["observers"])
        version = f" version {identity.version}" if identity.version else ""
        _logger.info("Loaded model %s%s (flavor %s) from %s", identity.name, version, model.flavor,
                     model.metadata.path)
    else:
        raise ValueError("no model to serve: set model_uri (-m URI or SCORING_SERVER_MODEL_URI)")
    slot = ModelSlot(_scorer(app, config, model, identity), app.extensions["observers"])
    app.extensions["worker_start"].append(slot.report)
    if config.check_serving_input:
        check_serving_input_example(slot.scorer)
        _logger.info("The model scores its serving input example")
    app.extensions["model_slot"] = slot
    if config.model_uri and is_moving_reference(config.model_uri):
        follower = _follower(app, config)
        follower.watch(config.model_uri, config.model_uri, identity,
                       lambda new_model, new_identity: slot.install(_scorer(app, config, new_model, new_identity)))


def _serve_catalog(app: Flask, config: ServerConfig) -> None:
    """Serve a catalog of models, loaded on demand in each worker."""
    configured = read_models_file(config.models_file) if config.models_file else []
    if config.model_root:
        configured += entries_from_root(config.model_root)
    sources = ModelSources(configured, config.registry_uri, config.registry_alias, config.registry_models,
                           admin_changes(config))
    names = [entry.name for entry in configured]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"model names used twice: {duplicates}")
    served = sorted(sources.entries())
    if config.default_model is not None and config.default_model not in served:
        raise ValueError(f"default_model {config.default_model!r} is not one of the served models {served}")
    _logger.info("Imported %s before starting workers",
                 ", ".join(import_shared_modules([sources.entries()[name].uri for name in served],
                                                 config.registry_uri)) or "nothing")
    catalog = ModelCatalog(
        sources, lambda model, identity, entry: _scorer(app, config, model, identity, entry),
        LoadedModels(config.max_loaded_models, config.max_memory_mb), _follower(app, config),
        policy=loading_policy(config), observers=app.extensions["observers"],
    )
    app.extensions["worker_start"].append(catalog.report)
    _logger.info("Serving %d model%s on demand (at most %d loaded per worker)",
                 len(served), "" if len(served) == 1 else "s", config.max_loaded_models)
    app.extensions["model_catalog"] = catalog
    app.register_blueprint(models.blueprint)


def _follower(app: Flask, config: ServerConfig) -> ReferenceFollower:
    follower = ReferenceFollower(config.registry_uri, config.poll_interval_seconds, loading_policy(config),
                                 app.extensions["observers"])
    app.extensions["follower"] = follower
    app.extensions["worker_start"].append(follower.start)
    return follower


def _scorer(app: Flask, config: ServerConfig, model: LoadedModel, identity: ModelIdentity,
            entry: ModelEntry | None = None) -> Scorer:
    """A model's scorer as this server's configuration says (a catalog entry's protocol overrides it)."""
    protocol = entry.protocol if entry is not None and entry.protocol else config.protocol
    return Scorer(model, protocol, identity, batching_policy(model, config), app.extensions["observers"])
