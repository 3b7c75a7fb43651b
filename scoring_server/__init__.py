"""scoring-server: serve MLflow-format models over HTTP."""

__version__ = "0.1.0"
