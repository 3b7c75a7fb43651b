#!/usr/bin/env bash
# Create the test environment (.venv), install the package with its test extras, run pytest.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# nginx: the heavy tests run the nginx configuration docs/security.md gives for sync workers.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi
# prometheus: tests/monitoring/test_prometheus.py scrapes a real server with the Debian package.
if ! command -v prometheus >/dev/null && [ ! -x /usr/bin/prometheus ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
fi
.venv/bin/python -m pytest "$@"
# The heavy tests (load and soak, marked `heavy` in setup.cfg) in a second run, so the first stays fast.
status=0
.venv/bin/python -m pytest -m heavy "$@" || status=$?
if [ "$status" -eq 5 ]; then  # the arguments selected no heavy test
  status=0
fi
exit "$status"
