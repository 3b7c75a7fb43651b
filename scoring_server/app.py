"""The Flask application factory: nothing happens at import time."""
from __future__ import annotations

import logging

from flask import Flask

from flavors import LoadedModel

from .batching import AdaptiveBatcher
from .config import ServerConfig, load_config
from .error_handlers import register_error_handlers
from .model_slot import ModelSlot
from .model_source import ModelFollower, ModelIdentity, is_moving_reference, load_served_model
from .pipeline import Scorer
from .prediction import predict
from .model_catalog import ModelCatalog, entries_from_file, entries_from_registry, entries_from_root
from .routes import health, models, scoring
from .serving_input_check import check_serving_input_example

_logger = logging.getLogger(__name__)


def make_batcher(model: LoadedModel, config: ServerConfig) -> AdaptiveBatcher | None:
    """A batcher when threads can bring concurrent requests and the model's rows are independent."""
    wanted = config.batching == "on" or (config.batching == "auto" and model.row_independent)
    if config.threads < 2 or not wanted:
        return None
    return AdaptiveBatcher(lambda data, params: predict(model, data, params), config.max_batch_size,
                           config.max_batch_time_ms)


def create_app(config: ServerConfig | None = None, model: LoadedModel | None = None) -> Flask:
    """Build a scoring app; the model is loaded here (once per process) unless one is given.

    A moving registry reference (``models:/NAME/Production``, ``@alias``, ``/latest``) also gets a
    :class:`ModelFollower`, started in each worker by ``server.start_worker_threads``.
    """
    config = config or load_config()
    logging.getLogger("scoring_server").setLevel(config.log_level.upper())
    if config.multi_model and model is None:
        if config.model_uri:
            raise ValueError("serve one model (-m URI) or many (--models, --model-root, --registry-models), not both")
        return _multi_model_app(config)
    if model is not None:
        identity = ModelIdentity(model.metadata.path.name)
    elif config.model_uri:
        model, identity = load_served_model(config.model_uri, config.registry_uri)
        _logger.info("Loaded model %s (flavor %s)", config.model_uri, model.flavor)
    else:
        raise ValueError("no model to serve: set model_uri (-m URI or SCORING_SERVER_MODEL_URI)")
    slot = ModelSlot(_scorer(model, identity, config))
    if config.check_serving_input:
        check_serving_input_example(slot.scorer)
        _logger.info("The model scores its serving input example")
    app = _flask_app(config)
    app.extensions["model_slot"] = slot
    if config.model_uri and is_moving_reference(config.model_uri):
        app.extensions["model_follower"] = ModelFollower(
            config.model_uri, config.registry_uri, identity,
            install=lambda new_model, new_identity: slot.install(_scorer(new_model, new_identity, config)),
        )
    return app


def _multi_model_app(config: ServerConfig) -> Flask:
    """An app serving a catalog of models, loaded on demand in each worker."""
    entries = []
    if config.models_file:
        entries += entries_from_file(config.models_file)
    if config.model_root:
        entries += entries_from_root(config.model_root)
    if config.registry_models:
        entries += entries_from_registry(config.registry_uri, config.registry_alias)
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"model names used twice: {duplicates}")
    if config.default_model is not None and config.default_model not in names:
        raise ValueError(f"default_model {config.default_model!r} is not one of the served models {sorted(names)}")
    catalog = ModelCatalog(
        entries, lambda model, identity, entry: _scorer(model, identity, config, entry.protocol),
        config.max_loaded_models, config.max_memory_mb, config.registry_uri,
    )
    _logger.info("Serving %d models on demand (at most %d loaded per worker)", len(entries), config.max_loaded_models)
    app = _flask_app(config)
    app.extensions["model_catalog"] = catalog
    app.register_blueprint(models.blueprint)
    return app


def _flask_app(config: ServerConfig) -> Flask:
    app = Flask("scoring_server")
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.config["SCORING_SERVER"] = config
    app.register_blueprint(health.blueprint)
    app.register_blueprint(scoring.blueprint)
    register_error_handlers(app)
    return app


def _scorer(model: LoadedModel, identity: ModelIdentity, config: ServerConfig, protocol: str | None = None) -> Scorer:
    """A model's scorer as this server's configuration says (``protocol`` overrides the server's)."""
    return Scorer(model, make_batcher(model, config), protocol or config.protocol, identity)
