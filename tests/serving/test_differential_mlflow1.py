"""The legacy protocol against real MLflow 1.30.1: scripts/compare_with_mlflow1.py sends its whole
corpus (every legacy Content-Type × every body) to both servers and must find no difference beyond
the deliberate ones it lists."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MLFLOW130_PYTHON = REPO / ".bench" / "mlflow130" / "bin" / "python"


@pytest.mark.heavy
def test_mlflow1_protocol_answers_as_mlflow_1_30():
    if not MLFLOW130_PYTHON.exists():
        pytest.fail(f"{MLFLOW130_PYTHON} is missing: create it with scripts/test.sh (python3 -m venv "
                    ".bench/mlflow130 && .bench/mlflow130/bin/pip install mlflow==1.30.1 'scikit-learn<1.6' "
                    "'cloudpickle<3')")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_with_mlflow1.py"), "--mlflow-python",
                             str(MLFLOW130_PYTHON)], capture_output=True, text=True, timeout=600, cwd=REPO, check=False)
    summary = re.search(r"(\d+) unexplained differences in (\d+) cases", result.stdout)
    assert summary is not None, result.stdout[-2000:] + result.stderr[-2000:]
    assert int(summary.group(2)) >= 100
    assert result.returncode == 0 and summary.group(1) == "0", result.stdout
