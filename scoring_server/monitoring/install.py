"""What an app's monitoring is made of: each part registers its observers, request hooks and
routes here, from the server's configuration."""
from __future__ import annotations

from flask import Flask

from ..config import ServerConfig
from ..routes import monitoring as monitoring_route
from .access_log import install_access_log
from .capture import install_capture
from .drift import install_drift
from .metrics import install_metrics


def install_monitoring(app: Flask, config: ServerConfig) -> None:
    """Install every monitoring part ``config`` asks for on ``app``."""
    install_access_log(app, config)  # request IDs first: every other part may read them
    app.extensions["scrape_collectors"] = []  # evaluated by each scrape of /metrics (monitoring.exposition)
    install_metrics(app, config)
    install_capture(app, config)
    install_drift(app, config)
    if config.metrics_port is None or not config.metrics:  # else beside /metrics, on the metrics port
        app.register_blueprint(monitoring_route.blueprint)
