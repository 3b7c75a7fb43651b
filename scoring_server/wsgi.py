"""WSGI entry for operators who start gunicorn themselves::

    SCORING_SERVER_MODEL_URI=./model gunicorn -c conf/gunicorn.conf.py scoring_server.wsgi:app

The configuration comes from ``SCORING_SERVER_*`` variables (and ``SCORING_SERVER_CONFIG``,
a YAML file). Use ``preload_app = True`` (as conf/gunicorn.conf.py does) to load the model
once in the master.
"""
import os

from .app import create_app
from .config import load_config

app = create_app(load_config(os.environ.get("SCORING_SERVER_CONFIG")))
