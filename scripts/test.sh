#!/usr/bin/env bash
# Create the test environment (.venv), install the package with its test extras, run pytest.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# PyTorch's CPU build first (2.13.0 lies on this kind of machine's disk, /opt/wheels): a plain torch
# requirement would take a CUDA build of several GB; the test extras then find torch installed.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test]'
# nginx: the heavy tests run the nginx configuration docs/security.md gives for sync workers.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi
# prometheus: tests/monitoring/test_prometheus.py scrapes a real server with the Debian package.
if ! command -v prometheus >/dev/null && [ ! -x /usr/bin/prometheus ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
fi
# postgresql: the heavy registry tests (tests/registry/postgres_server.py) start a real server with initdb.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
# Java: the heavy Spark tests (tests/test_spark.py) run pyspark in local mode, which starts a JVM.
if ! command -v java >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless
fi
# MLflow 1.30.1 in its own virtualenv: the heavy differential test of the legacy protocol
# (tests/serving/test_differential_mlflow1.py) serves a model it saves.
if [ ! -x .bench/mlflow130/bin/mlflow ]; then
  python3 -m venv .bench/mlflow130
  .bench/mlflow130/bin/python -m pip install --quiet mlflow==1.30.1 'scikit-learn<1.6' 'cloudpickle<3'
fi
# MLflow 3.17.2 in its own virtualenv (as scripts/bench.sh makes it): the heavy differential corpus
# (tests/serving/test_differential_mlflow.py) runs `mlflow models serve` side by side, and
# tests/flavors/test_saved_models_load_in_mlflow.py loads and re-saves our saved models with it, and
# tests/registry/test_mlflow_registry.py runs `mlflow server` as a registry (about 80 s to make it).
if [ ! -x .bench/mlflow/bin/mlflow ]; then
  python3 -m venv .bench/mlflow
  .bench/mlflow/bin/python -m pip install --quiet mlflow==3.17.2 scikit-learn==1.9.1 skops==0.16.0 cloudpickle==3.1.2
fi
# The flavors' frameworks in MLflow's virtualenv too: the heavy tests have real MLflow load the models our
# save_model writes (tests/flavors/); torch's CPU build first, as for .venv.
if ! KERAS_BACKEND=torch .bench/mlflow/bin/python -c "import onnx, onnxruntime, xgboost, lightgbm, torch, keras" 2>/dev/null; then
  .bench/mlflow/bin/python -m pip install --quiet torch==2.13.0
  .bench/mlflow/bin/python -m pip install --quiet onnx onnxruntime xgboost lightgbm keras
fi
.venv/bin/python -m pytest "$@"
# The heavy tests (load and soak, marked `heavy` in setup.cfg) in a second run, so the first stays fast.
status=0
.venv/bin/python -m pytest -m heavy "$@" || status=$?
if [ "$status" -eq 5 ]; then  # the arguments selected no heavy test
  status=0
fi
exit "$status"
