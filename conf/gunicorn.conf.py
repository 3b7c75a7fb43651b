"""gunicorn configuration for operators who start gunicorn themselves (see scripts/serve.sh).

    SCORING_SERVER_MODEL_URI=./model gunicorn -c conf/gunicorn.conf.py scoring_server.wsgi:app

The settings are exactly those of `scoring-server serve` without flags: the same configuration
(the SCORING_SERVER_CONFIG file, then SCORING_SERVER_* variables; docs/configuration.md) turned
into gunicorn options by the same function. gunicorn's own command-line arguments still win.
"""
from scoring_server.config import config_from_environment
from scoring_server.monitoring.multiprocess import create_server_directory
from scoring_server.server import gunicorn_options

# What the workers count (metrics, drift) is summed from one directory they share: made here, in the
# master, before the app is preloaded, as `serve` does; removed by the on_exit hook.
create_server_directory()

# bind, workers, threads, the worker class (scoring_server.workers: JSON errors, deadlines, drain, slow
# clients read by the event loop), timeout, graceful_timeout, the hooks... as `serve` sets them, so the
# two cannot drift.
globals().update(gunicorn_options(config_from_environment()))
# Load the model once in the master; forked workers share its memory.
preload_app = True
