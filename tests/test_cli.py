"""The `scoring-server` command line: batch `predict`, `serve` flags and configuration, `registry`."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from .conftest import FIXTURES, REPO

IRIS = FIXTURES / "iris"
CSV = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, stdin: str | None = None) -> CliResult:
    """The command line in this process (click's runner): what a new process would print and exit with."""
    from click.testing import CliRunner

    from scoring_server.cli import main

    result = CliRunner().invoke(main, list(args), input=stdin, env={"SCORING_SERVER_CONFIG": None})
    return CliResult(result.exit_code, result.stdout, result.stderr)


def test_predict_json_from_stdin_to_stdout():
    """Once through the real entry point (``python -m scoring_server``); the other tests run it in-process."""
    body = json.dumps({"dataframe_split": {"columns": CSV.splitlines()[0].split(","), "data": [[5.1, 3.5, 1.4, 0.2]]}})
    result = subprocess.run([sys.executable, "-m", "scoring_server", "predict", "-m", str(IRIS)], cwd=REPO,
                            input=body, capture_output=True, text=True, timeout=120)
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


# --- serve's flags come from the configuration schema ------------------------------------------

CONTRACT_FLAGS = {
    "model_uri": ["-m", "--model-uri"], "host": ["-h", "--host"], "port": ["-p", "--port"],
    "workers": ["-w", "--workers"], "timeout": ["-t", "--timeout"], "config_path": ["--config"],
    "expose_stack_traces": ["--expose-stack-traces", "--no-expose-stack-traces"],
    "check_serving_input": ["--check-serving-input", "--no-check-serving-input"], "threads": ["--threads"],
    "batching": ["--batching"], "max_batch_size": ["--max-batch-size"], "max_batch_time_ms": ["--max-batch-time-ms"],
    "protocol": ["--protocol"], "registry_uri": ["--registry"], "poll_interval_seconds": ["--poll-interval"],
    "models_file": ["--models"], "model_root": ["--model-root"], "registry_models": ["--registry-models"],
    "registry_alias": ["--registry-alias"], "default_model": ["--default-model"],
    "max_loaded_models": ["--max-loaded-models"], "max_memory_mb": ["--max-memory-mb"],
    "admin_api": ["--admin-api", "--no-admin-api"], "log_level": ["--log-level"],
    "max_request_bytes": ["--max-request-bytes"],
}


def serve_flags() -> dict[str, list[str]]:
    from scoring_server.cli import serve

    return {param.name: [*param.opts, *param.secondary_opts] for param in serve.params if param.opts}


def test_serve_keeps_every_flag_with_its_meaning():
    flags = serve_flags()
    for name, expected in CONTRACT_FLAGS.items():
        assert set(expected) <= set(flags[name]), name


def test_every_config_key_has_a_serve_flag():
    from scoring_server.config import config_keys

    flags = serve_flags()
    assert all(key.name in flags and flags[key.name] for key in config_keys())


def served_config(monkeypatch, *args: str, env: dict | None = None):
    """The configuration ``serve ARGS`` would serve with (the server itself is not started)."""
    from click.testing import CliRunner

    from scoring_server import cli

    served = []
    monkeypatch.setattr(cli, "_serve", served.append)
    result = CliRunner().invoke(cli.main, ["serve", *args], env=env)
    assert result.exit_code == 0, result.output
    return served[0]


def test_serve_contract_flags_and_the_new_ones(monkeypatch):
    config = served_config(monkeypatch, "-m", "./model", "-h", "0.0.0.0", "-p", "8123", "-w", "3", "-t", "9",
                           "--log-level", "debug", "--max-request-bytes", "1000", "--model-param", "which")
    assert (config.model_uri, config.host, config.port, config.workers, config.timeout) == ("./model", "0.0.0.0", 8123, 3, 9)
    assert (config.log_level, config.max_request_bytes, config.model_param) == ("debug", 1000, "which")


def test_serve_reads_the_config_file_named_by_scoring_server_config(monkeypatch, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("port: 6002\n")
    assert served_config(monkeypatch, "-m", "./model", env={"SCORING_SERVER_CONFIG": str(path)}).port == 6002


def test_gunicorn_conf_sets_what_serve_would_for_the_same_environment(monkeypatch, tmp_path):
    import runpy

    from scoring_server.monitoring.multiprocess import remove_server_directory, server_directory
    from scoring_server.server import gunicorn_options

    path = tmp_path / "c.yaml"
    path.write_text("host: 0.0.0.0\nthreads: 4\nlog_level: warning\n")
    for name, value in {"SCORING_SERVER_CONFIG": str(path), "SCORING_SERVER_MODEL_URI": str(IRIS),
                        "SCORING_SERVER_PORT": "6123", "SCORING_SERVER_WORKERS": "3",
                        "SCORING_SERVER_TIMEOUT": "17"}.items():
        monkeypatch.setenv(name, value)
    try:
        conf = runpy.run_path(str(REPO / "conf" / "gunicorn.conf.py"))
        shared = server_directory()
        assert shared is not None and shared.is_dir()  # made in the master, before the app is preloaded
    finally:
        remove_server_directory()
    expected = gunicorn_options(served_config(monkeypatch))
    settings = ("bind", "workers", "threads", "timeout", "loglevel")
    assert {name: conf[name] for name in settings} == {name: expected[name] for name in settings}
    assert conf["bind"] == "0.0.0.0:6123" and conf["preload_app"] is True


def test_cli_imports_no_serving_modules_until_a_command_needs_them():
    code = ("import sys, scoring_server.cli; "
            "print(sorted(m for m in ('scoring_server.app', 'scoring_server.pipeline', 'flask', 'gunicorn', "
            "'sklearn') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


# --- the registry commands find the registry the server uses ------------------------------------

def run_registry(tmp_path, *args: str, env: dict[str, str]):
    """``scoring-server registry ARGS`` in-process, with HOME moved so the default root is never touched."""
    from click.testing import CliRunner

    from scoring_server.cli import main

    clean = {"SCORING_SERVER_REGISTRY_URI": None, "SCORING_REGISTRY_URI": None, "HOME": str(tmp_path / "home")}
    return CliRunner().invoke(main, ["registry", *args], env={**clean, **env})


def test_registry_cli_honours_scoring_server_registry_uri(tmp_path):
    from scoring_server.registry import ModelRegistry

    root = tmp_path / "registry"
    result = run_registry(tmp_path, "create", "fraud", env={"SCORING_SERVER_REGISTRY_URI": str(root)})
    assert result.exit_code == 0, result.output
    assert [model.name for model in ModelRegistry(root).list_models()] == ["fraud"]


def test_registry_flag_is_taken_after_the_subcommand_too(tmp_path):
    root = tmp_path / "registry"
    assert run_registry(tmp_path, "create", "fraud", "--registry", str(root), env={}).exit_code == 0
    listed = run_registry(tmp_path, "list", "--json", "--registry", str(root), env={})
    assert [model["name"] for model in json.loads(listed.output)] == ["fraud"]


def test_old_registry_variable_still_works_with_a_deprecation_warning(tmp_path, caplog):
    from scoring_server.registry import ModelRegistry

    root = tmp_path / "registry"
    result = run_registry(tmp_path, "create", "fraud", env={"SCORING_REGISTRY_URI": str(root)})
    assert result.exit_code == 0, result.output
    assert [model.name for model in ModelRegistry(root).list_models()] == ["fraud"]
    assert "SCORING_REGISTRY_URI is deprecated; set SCORING_SERVER_REGISTRY_URI" in caplog.text


def test_registry_flag_is_taken_before_the_subcommand(tmp_path):
    root = tmp_path / "registry"
    assert run_registry(tmp_path, "--registry", str(root), "create", "fraud", env={}).exit_code == 0
    listed = run_registry(tmp_path, "--registry", str(root), "list", "--json", env={})
    assert [model["name"] for model in json.loads(listed.output)] == ["fraud"]


def test_reading_a_missing_registry_names_the_root_and_creates_nothing(tmp_path):
    root = tmp_path / "nowhere"
    shown = run_registry(tmp_path, "show", "fraud", "--registry", str(root), env={})
    assert shown.exit_code == 1 and f"the registry {root} does not exist" in shown.stderr
    listed = run_registry(tmp_path, "list", "--registry", str(root), env={})
    assert listed.exit_code == 0 and f"No registered models in the registry {root}" in listed.stderr
    assert not root.exists() and not (tmp_path / "home").exists()


def test_an_unknown_model_names_the_registry_searched(tmp_path):
    root = tmp_path / "registry"
    assert run_registry(tmp_path, "create", "fraud", "--registry", str(root), env={}).exit_code == 0
    shown = run_registry(tmp_path, "show", "churn", "--registry", str(root), env={})
    assert shown.exit_code == 1
    assert f"registered model 'churn' does not exist in the registry {root}" in shown.stderr
    predicted = run_cli("predict", "-m", "models:/churn/1", stdin="{}")
    assert predicted.returncode == 1 and "does not exist" in predicted.stderr and "registry" in predicted.stderr


# --- the environment flags of `mlflow models serve` / `predict` ---------------------------------

def test_serve_accepts_mlflow_env_manager_local_and_no_conda(monkeypatch):
    assert served_config(monkeypatch, "-m", "./model", "--env-manager", "local").model_uri == "./model"
    assert served_config(monkeypatch, "-m", "./model", "--no-conda", "--install-mlflow").model_uri == "./model"


@pytest.mark.parametrize("command", ["serve", "predict"])
def test_enable_mlserver_is_refused_in_one_line(command):
    result = run_cli(command, "-m", str(IRIS), "--enable-mlserver", stdin="{}")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "--enable-mlserver: MLServer" in result.stderr


def test_predict_explains_the_mlflow_flags_it_honours():
    body = json.dumps({"dataframe_split": {"columns": CSV.splitlines()[0].split(","), "data": [[5.1, 3.5, 1.4, 0.2]]}})
    result = run_cli("predict", "-m", str(IRIS), "--env-manager", "local", "--no-conda", "--install-mlflow", stdin=body)
    assert result.returncode == 0 and json.loads(result.stdout) == {"predictions": [0]}
    assert result.stderr.splitlines() == [
        "--no-conda: the model runs in this Python environment, as with --env-manager local",
        "--install-mlflow: ignored, serving needs no MLflow"]


@pytest.mark.parametrize("command", ["serve", "predict", "validate"])
def test_model_uri_help_mentions_registry_uris(command):
    assert "models:/" in run_cli(command, "--help").stdout
