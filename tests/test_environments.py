"""Model environments (``--env-manager virtualenv|uv``): what a model asks for, the cache key, the cache and its
lock, the installer's errors; heavy: real environments built from PyPI, served and scored."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from scoring_server.environments.builder import ModelEnvironmentError, install_failure
from scoring_server.environments.cache import cached_environment
from scoring_server.environments.interpreters import current_interpreter, find_interpreter
from scoring_server.environments.prepare import environment_key, with_local_env_manager
from scoring_server.environments.spec import read_spec

from .conftest import FIXTURES, REPO, CommandServer, clean_environment, free_port
from .test_cli import run_cli

IRIS = FIXTURES / "iris"
#: A small pure-Python package pinned at a version other than the server environment's.
PINNED = "idna==3.4"


def write_model_files(model_dir: Path, requirements: str, **extra_files: str) -> Path:
    """A model directory's environment files as MLflow writes them (python_env.yaml naming requirements.txt)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "python_env.yaml").write_text((IRIS / "python_env.yaml").read_text())
    (model_dir / "requirements.txt").write_text(requirements)
    for name, text in extra_files.items():
        (model_dir / name).write_text(text)
    return model_dir


# --- what a model asks for --------------------------------------------------------------------------

def test_an_mlflow_written_python_env_gives_version_build_requirements_and_requirements_without_mlflow():
    spec = read_spec(IRIS)
    assert spec.python_version == "3.11.7"
    assert [line.text for line in spec.build_requirements] == ["pip==23.2.1", "setuptools==65.5.0", "wheel"]
    texts = [line.text for line in spec.requirements]
    assert texts == (IRIS / "requirements.txt").read_text().split()[1:]  # all but mlflow==3.17.2
    assert {line.source for line in spec.requirements} == {IRIS / "requirements.txt"}


def test_requirements_drop_mlflow_and_comments_read_nested_files_and_anchor_constraints(tmp_path, caplog):
    model = write_model_files(tmp_path / "m", "# pinned\nmlflow==3.17.2\nMLflow_Skinny[extras]>=2\n"
                                               "-r more.txt\n-c constraints.txt\nsix==1.16.0  # why\n",
                              **{"more.txt": "idna==3.4\n", "constraints.txt": "idna<4\n"})
    with caplog.at_level("DEBUG", logger="scoring_server.environments.spec"):
        spec = read_spec(model)
    assert [(line.text, line.source.name) for line in spec.requirements] == [
        ("idna==3.4", "more.txt"), (f"-c {model / 'constraints.txt'}", "requirements.txt"),
        ("six==1.16.0", "requirements.txt")]
    assert "asks for mlflow==3.17.2: not installed, serving needs no MLflow" in caplog.text


def test_without_python_env_yaml_requirements_txt_alone_is_read(tmp_path):
    (tmp_path / "requirements.txt").write_text("idna==3.4\n")
    spec = read_spec(tmp_path)
    assert spec.python_version is None and spec.build_requirements == ()
    assert [line.text for line in spec.requirements] == ["idna==3.4"]


# --- the cache key ------------------------------------------------------------------------------------

def test_the_key_follows_requirements_manager_and_python_not_the_model_location(tmp_path):
    interpreter = current_interpreter()
    first = write_model_files(tmp_path / "a", "idna==3.4\n")
    copy = write_model_files(tmp_path / "b", "idna==3.4\n")
    key = environment_key(read_spec(first), "uv", interpreter)
    assert environment_key(read_spec(copy), "uv", interpreter) == key
    assert environment_key(read_spec(first), "virtualenv", interpreter) != key
    assert environment_key(read_spec(first), "uv", type(interpreter)(interpreter.path, "3.99.0")) != key
    (copy / "requirements.txt").write_text("idna==3.5\n")
    assert environment_key(read_spec(copy), "uv", interpreter) != key


def test_a_python_version_missing_here_warns_in_one_line_and_uses_this_one(tmp_path, caplog):
    assert find_interpreter(current_interpreter().version, tmp_path, None) == current_interpreter()
    with caplog.at_level("WARNING"):
        assert find_interpreter("2.6.9", tmp_path / "python_env.yaml", None) == current_interpreter()
    assert len(caplog.records) == 1
    assert "asks for Python 2.6.9, which this machine does not have (python2.6)" in caplog.text


# --- the cache and its lock ----------------------------------------------------------------------------

def test_an_environment_is_built_once_even_by_two_starting_together(tmp_path):
    builds = []

    def build(target: Path) -> None:
        builds.append(target)
        time.sleep(0.3)  # the other thread asks meanwhile
        (target / "made").write_text("yes")

    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_environment(tmp_path, "k", build)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [tmp_path / "k", tmp_path / "k"] and len(builds) == 1
    assert (tmp_path / "k" / "made").read_text() == "yes"
    assert cached_environment(tmp_path, "k", build) == tmp_path / "k" and len(builds) == 1


def test_a_failed_build_leaves_nothing_that_looks_done_and_a_killed_one_is_cleared(tmp_path):
    (tmp_path / "k.building-killed").mkdir()  # what a build killed mid-way leaves

    def failing(target: Path) -> None:
        (target / "half").write_text("")
        raise ModelEnvironmentError("no")

    with pytest.raises(ModelEnvironmentError):
        cached_environment(tmp_path, "k", failing)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["k.lock"]


# --- the installer's errors, and the command line -----------------------------------------------------

@pytest.mark.parametrize("output", [
    "Collecting idna==3.4\nERROR: Could not find a version that satisfies the requirement nosuchpkg==1.0 "
    "(from versions: none)\nERROR: No matching distribution found for nosuchpkg==1.0\n",
    "  × No solution found when resolving dependencies:\n  ╰─▶ Because nosuchpkg was not found in the package "
    "registry and you require nosuchpkg==1.0, we can conclude that your requirements are unsatisfiable.\n"])
def test_an_install_failure_names_the_file_and_line_that_asked(tmp_path, output):
    model = write_model_files(tmp_path / "m", "idna==3.4\nNoSuchPkg==1.0\n")
    message = install_failure(read_spec(model), output)
    assert message.startswith(f"requirements.txt of {model} asks for NoSuchPkg==1.0: ")
    assert "nosuchpkg==1.0" in message and "\n" not in message and "Collecting" not in message


def test_the_rerun_command_runs_locally_in_the_environment():
    assert with_local_env_manager(["serve", "-m", "m", "--env-manager", "uv", "-p", "1"]) == [
        "serve", "-m", "m", "-p", "1", "--env-manager", "local"]
    assert with_local_env_manager(["predict", "--env-manager=virtualenv"]) == ["predict", "--env-manager", "local"]


@pytest.mark.parametrize("command", ["serve", "predict", "validate"])
def test_conda_is_refused_in_one_line_naming_the_alternatives(command):
    result = run_cli(command, "-m", str(IRIS), "--env-manager", "conda", stdin="{}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --env-manager conda: conda environments are not available; use virtualenv or uv (built from the "
        "model's python_env.yaml) or local (this environment)"]


def test_uv_missing_is_one_line_saying_how_to_install_it(monkeypatch):
    monkeypatch.setattr("scoring_server.environments.prepare.uv_binary", lambda: None)
    result = run_cli("predict", "-m", str(IRIS), "--env-manager", "uv", stdin="{}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --env-manager uv: the uv command was not found; install it with `pip install uv`, "
        "or use --env-manager virtualenv")


def test_many_models_cannot_share_one_model_environment(tmp_path):
    result = run_cli("serve", "--model-root", str(tmp_path), "--env-manager", "virtualenv")
    assert result.returncode == 1 and "builds the environment of one model (-m)" in result.stderr


# --- heavy: real environments ------------------------------------------------------------------------

def _environment(root: Path) -> dict[str, str]:
    """A command's environment: the cache root, and uv found on PATH (where scripts/test.sh installs it)."""
    return clean_environment({"SCORING_SERVER_ENV_ROOT": str(root),
                              "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})


def _scoring_server(*args: str, root: Path, stdin: str = "", timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoring_server", *args], cwd=REPO, env=_environment(root),
                          input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def pinned_model(tmp_path_factory) -> Path:
    """A custom model whose predictions are the installed version of idna, requiring idna==3.4 (and MLflow,
    which is not installed)."""
    from flavors.python_function import save_model

    folder = tmp_path_factory.mktemp("pinned")
    code = folder / "idna_version.py"
    code.write_text(textwrap.dedent("""
        import importlib.metadata

        from flavors.python_model import set_model

        def predict(model_input, params=None):
            return [importlib.metadata.version("idna")] * len(model_input)

        set_model(predict)
    """))
    save_model(folder / "model", python_model=code, signature=False, pip_requirements=["mlflow==3.17.2", PINNED])
    assert version("idna") != PINNED.split("==")[1], "pick a pin other than the server environment's idna"
    return folder / "model"


@pytest.fixture(scope="module")
def env_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("envs")


ROWS = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1], [2]]}})


@pytest.mark.heavy
@pytest.mark.parametrize("manager", ["virtualenv", "uv"])
def test_a_model_serves_in_its_own_environment_with_its_pinned_package(pinned_model, env_root, manager):
    built = _scoring_server("predict", "-m", str(pinned_model), "--env-manager", manager, root=env_root, stdin=ROWS)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == {"predictions": ["3.4", "3.4"]}
    assert f"Building the {manager} environment" in built.stderr
    [environment] = [path for path in env_root.iterdir() if path.is_dir() and _built_by(path, manager)]
    before = environment.stat()

    port = free_port()
    server = CommandServer([sys.executable, "-m", "scoring_server", "serve", "-m", str(pinned_model), "-h",
                            "127.0.0.1", "-p", str(port), "--env-manager", manager], port, _environment(env_root))
    try:
        assert server.post(ROWS).json() == {"predictions": ["3.4", "3.4"]}
    finally:
        output = server.stop()
    assert server.process.returncode == 0, output  # SIGTERM reached the server itself, which drained and exited
    assert "Building" not in output and f"Using the cached environment {environment}" in output
    after = environment.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def _built_by(environment: Path, manager: str) -> bool:
    """uv's environments say so in pyvenv.cfg; the standard library's do not."""
    return ("uv = " in (environment / "pyvenv.cfg").read_text()) == (manager == "uv")


@pytest.mark.heavy
@pytest.mark.parametrize("manager", ["virtualenv", "uv"])
def test_a_requirement_that_cannot_be_installed_fails_before_serving_naming_its_file(tmp_path, manager):
    model = tmp_path / "model"
    shutil.copytree(IRIS, model)
    (model / "requirements.txt").write_text("scikit-learn\nnosuchpkg-scoring-server-test==1.0\n")
    port = free_port()
    result = _scoring_server("serve", "-m", str(model), "-p", str(port), "--env-manager", manager,
                             root=tmp_path / "envs", timeout=600)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"Error: requirements.txt of {model} asks for nosuchpkg-scoring-server-test==1.0: "), result.stderr
    assert "Listening" not in result.stderr
    assert not [path for path in (tmp_path / "envs").iterdir() if path.is_dir()]  # nothing half-built kept
