"""``python -m scoring_server`` is the ``scoring-server`` command."""
from .cli import main

main()
