#!/usr/bin/env bash
# Run the throughput benchmark from a fresh machine: installs wrk (Debian) if missing, creates
# .venv with scoring-server and .bench/mlflow with MLflow (skip it with NO_MLFLOW=1), then runs
# scripts/bench/bench.py with any arguments given here (e.g. --rounds 5 --duration 10).
# BASELINE=REV also serves git revision REV (checked out in .bench/baseline) side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
mlflow_args=()
if [ "${NO_MLFLOW:-0}" != 1 ]; then
  python3 -m venv .bench/mlflow
  .bench/mlflow/bin/python -m pip install --quiet --upgrade pip
  # The versions that wrote the fixtures (tests/fixtures/mlflow-models/*/requirements.txt).
  .bench/mlflow/bin/python -m pip install --quiet mlflow==3.17.2 scikit-learn==1.9.1 skops==0.16.0 cloudpickle==3.1.2
  mlflow_args=(--mlflow-python .bench/mlflow/bin/python)
fi
baseline_args=()
if [ -n "${BASELINE:-}" ]; then
  rm -rf .bench/baseline
  git worktree prune
  git worktree add --detach --force .bench/baseline "$BASELINE" >/dev/null
  baseline_args=(--baseline .bench/baseline)
fi
exec .venv/bin/python scripts/bench/bench.py "${mlflow_args[@]}" "${baseline_args[@]}" "$@"
