#!/usr/bin/env bash
# Start gunicorn directly on the WSGI entry, for operators who manage gunicorn themselves.
#   scripts/serve.sh MODEL_DIR [extra gunicorn args...]
# Configured like `scoring-server serve`, by conf/gunicorn.conf.py: the SCORING_SERVER_CONFIG file,
# then SCORING_SERVER_* variables (docs/configuration.md); gunicorn args win over both.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 MODEL_DIR [gunicorn args...]" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
export SCORING_SERVER_MODEL_URI="$1"
shift
exec gunicorn -c "$here/conf/gunicorn.conf.py" "$@" scoring_server.wsgi:app
