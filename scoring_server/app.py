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
from .routes import health, scoring
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
    app = Flask("scoring_server")
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.config["SCORING_SERVER"] = config
    app.extensions["model_slot"] = slot
    if config.model_uri and is_moving_reference(config.model_uri):
        app.extensions["model_follower"] = ModelFollower(
            config.model_uri, config.registry_uri, config.poll_interval_seconds, identity,
            install=lambda new_model, new_identity: slot.install(_scorer(new_model, new_identity, config)),
        )
    app.register_blueprint(health.blueprint)
    app.register_blueprint(scoring.blueprint)
    register_error_handlers(app)
    return app


def _scorer(model: LoadedModel, identity: ModelIdentity, config: ServerConfig) -> Scorer:
    return Scorer(model, make_batcher(model, config), config.protocol, identity)
