"""WSGI entry for operators who start gunicorn themselves::

    SCORING_SERVER_MODEL_URI=./model gunicorn -c conf/gunicorn.conf.py scoring_server.wsgi:app

The configuration is what ``scoring-server serve`` without flags would use: the
``SCORING_SERVER_CONFIG`` YAML file, then ``SCORING_SERVER_*`` variables. Use
``preload_app = True`` (as conf/gunicorn.conf.py does) to load the model once in the master.
"""
from .app import create_app
from .config import config_from_environment

app = create_app(config_from_environment())
