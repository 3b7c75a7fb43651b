#!/usr/bin/env bash
# Serve a real demo model on http://127.0.0.1:5000 from a fresh machine:
# creates .venv, installs scoring-server, trains and saves an iris model, starts gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/python scripts/make_demo_model.py demo-model
cat <<'TXT'

Try it from another terminal:
  curl -s http://127.0.0.1:5000/invocations -H 'Content-Type: application/json' \
    -d '{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}'
  # -> {"predictions":[0,2]}

TXT
exec .venv/bin/scoring-server serve -m demo-model -h 127.0.0.1 -p "${PORT:-5000}" -w 2
