"""gunicorn configuration for operators who start gunicorn themselves (see scripts/serve.sh).

    SCORING_SERVER_MODEL_URI=./model gunicorn -c conf/gunicorn.conf.py scoring_server.wsgi:app

Settings come from the same SCORING_SERVER_* variables as `scoring-server serve`.
"""
import os

bind = f"{os.environ.get('SCORING_SERVER_HOST', '127.0.0.1')}:{os.environ.get('SCORING_SERVER_PORT', '5000')}"
workers = int(os.environ.get("SCORING_SERVER_WORKERS", "1"))
timeout = int(os.environ.get("SCORING_SERVER_TIMEOUT", "60"))
# Load the model once in the master; forked workers share its memory.
preload_app = True
errorlog = "-"
loglevel = os.environ.get("SCORING_SERVER_LOG_LEVEL", "info")
# No gunicornc control socket: its default path is shared by every gunicorn of the user.
control_socket_disable = True


def post_worker_init(worker):
    """Start the worker's background threads (following a models:/ stage or alias)."""
    from scoring_server.server import start_worker_threads

    start_worker_threads(worker)
