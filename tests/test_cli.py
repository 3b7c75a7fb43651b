"""The `scoring-server` command line: batch `predict` and `serve` argument errors."""
from __future__ import annotations

import json
import subprocess
import sys

from .conftest import FIXTURES, REPO

IRIS = FIXTURES / "iris"
CSV = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoring_server", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_predict_json_from_stdin_to_stdout():
    body = json.dumps({"dataframe_split": {"columns": CSV.splitlines()[0].split(","), "data": [[5.1, 3.5, 1.4, 0.2]]}})
    result = run_cli("predict", "-m", str(IRIS), stdin=body)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"predictions": [0]}


def test_predict_csv_file_to_file(tmp_path):
    source, target = tmp_path / "in.csv", tmp_path / "out.json"
    source.write_text(CSV)
    result = run_cli("predict", "-m", str(IRIS), "-i", str(source), "-o", str(target), "-t", "csv")
    assert result.returncode == 0, result.stderr
    assert json.loads(target.read_text()) == {"predictions": [0, 2]}


def test_predict_with_params_uses_them():
    body = json.dumps({"inputs": {"a": [1.0], "b": [2.0], "c": [3.0]}, "params": {"day_of_week": "Tuesday"}})
    result = run_cli("predict", "-m", str(FIXTURES / "day_models"), stdin=body)
    assert json.loads(result.stdout) == {"predictions": [406.0953097317349]}


def test_predict_bad_input_exits_non_zero_with_the_error():
    result = run_cli("predict", "-m", str(IRIS), "-t", "csv", stdin="x,y\n1,2\n")
    assert result.returncode == 1
    assert "INVALID_PARAMETER_VALUE" in result.stderr and "missing inputs" in result.stderr


def test_serve_with_missing_model_fails_fast_with_a_clear_message(tmp_path):
    result = run_cli("serve", "-m", str(tmp_path / "nope"), "-p", "0")
    assert result.returncode != 0
    assert "cannot load model" in result.stderr


def test_serve_with_bad_config_names_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("port: lots\n")
    result = run_cli("serve", "-m", str(IRIS), "--config", str(config))
    assert result.returncode != 0
    assert "port" in result.stderr


def test_version_flag_prints_the_version():
    from scoring_server import __version__

    assert __version__ in run_cli("--version").stdout


def broken_iris(tmp_path):
    """The iris fixture with a serving input example that no longer fits its signature."""
    import shutil

    model = tmp_path / "iris"
    shutil.copytree(IRIS, model)
    example = model / "serving_input_example.json"
    example.write_text(example.read_text().replace("sepal_length", "sepal_len"))
    return model


def test_validate_reports_success_with_the_predictions():
    result = run_cli("validate", "-m", str(IRIS))
    assert result.returncode == 0, result.stderr
    assert 'OK' in result.stdout and '{"predictions":[0,0,0]}' in result.stdout


def test_validate_reports_the_exact_failure(tmp_path):
    result = run_cli("validate", "-m", str(broken_iris(tmp_path)))
    assert result.returncode == 1
    assert "400 INVALID_PARAMETER_VALUE" in result.stderr and "['sepal_length']" in result.stderr


def test_validate_without_an_example_says_so():
    result = run_cli("validate", "-m", str(FIXTURES / "iris_nosig"))
    assert result.returncode == 1 and "no saved serving input example" in result.stderr


def test_serve_refuses_to_start_when_the_startup_check_fails(tmp_path):
    result = run_cli("serve", "-m", str(broken_iris(tmp_path)), "--check-serving-input", "-p", "0")
    assert result.returncode == 1
    assert "refusing to serve" in result.stderr and "INVALID_PARAMETER_VALUE" in result.stderr


def test_serve_starts_when_the_startup_check_passes():
    from .conftest import RunningServer

    server = RunningServer(IRIS, "--check-serving-input", workers=1)
    output = server.stop()
    assert "scores its serving input example" in output
