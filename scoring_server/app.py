"""The Flask application factory: nothing happens at import time."""
from __future__ import annotations

import logging

from flask import Flask

from flavors import LoadedModel, load_model

from .config import ServerConfig, load_config
from .error_handlers import register_error_handlers
from .batching import AdaptiveBatcher
from .model_slot import ModelSlot
from .prediction import predict
from .pipeline import Scorer
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
    """Build a scoring app; the model is loaded here (once per process) unless one is given."""
    config = config or load_config()
    logging.getLogger("scoring_server").setLevel(config.log_level.upper())
    if model is None:
        if not config.model_uri:
            raise ValueError("no model to serve: set model_uri (-m URI or SCORING_SERVER_MODEL_URI)")
        model = load_model(config.model_uri)
        _logger.info("Loaded model %s (flavor %s)", config.model_uri, model.flavor)
    scorer = Scorer(model, make_batcher(model, config), config.protocol)
    if config.check_serving_input:
        check_serving_input_example(scorer)
        _logger.info("The model scores its serving input example")
    app = Flask("scoring_server")
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.config["SCORING_SERVER"] = config
    app.extensions["model_slot"] = ModelSlot(scorer)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(scoring.blueprint)
    register_error_handlers(app)
    return app
