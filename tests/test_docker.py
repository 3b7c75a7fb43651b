"""Container images: ``generate-dockerfile``'s build context, ``build-docker``'s choice of runtime, and the image's
recipe (steps.py) run as its Dockerfile runs it, in a fresh virtual environment (heavy) and, where a container
runtime answers, built and scored for real (heavy)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from scoring_server.deploy import docker

from .conftest import FIXTURES, REPO, CommandServer, InProcessServer, answers_ping, free_port, worker_pids

IRIS = FIXTURES / "iris"
STEPS = "python /opt/scoring-server/steps.py"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoring_server", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def generate(model_uri: str, outdir: Path, *extra: str, env: dict[str, str] | None = None) -> str:
    """``generate-dockerfile`` of ``model_uri`` into ``outdir``; the Dockerfile it wrote."""
    result = run_cli("generate-dockerfile", "-m", model_uri, "-d", str(outdir), *extra, env=env)
    assert result.returncode == 0, result.stderr
    return (outdir / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def iris_context(tmp_path_factory) -> Path:
    context = tmp_path_factory.mktemp("docker") / "iris"
    generate(str(IRIS), context)
    return context


def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", "", dockerfile)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def digests(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in directory.rglob("*") if path.is_file()}


def test_dockerfile_runs_the_model_as_a_non_root_user_on_8080(iris_context):
    lines = instructions((iris_context / "Dockerfile").read_text())
    assert lines[0] == "FROM python:3.11-slim"  # the Python of the model's python_env.yaml (3.11.7)
    assert "USER 10001:10001" in lines
    assert "EXPOSE 8080" in lines
    assert "COPY model/ /opt/ml/model/" in lines
    assert [line for line in lines if line.startswith("RUN python")] == [f"RUN {STEPS} install", f"RUN {STEPS} check"]
    # The check runs as the user that serves, after the switch.
    assert lines.index("USER 10001:10001") < lines.index(f"RUN {STEPS} check")
    healthcheck = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "http://127.0.0.1:8080/ping" in healthcheck and "urllib.request" in healthcheck
    cmd = json.loads(lines[-1].removeprefix("CMD "))
    # Only the model, host and port are fixed: no -w or other flag that would override SCORING_SERVER_*.
    assert cmd == ["python", "/opt/scoring-server/steps.py", "serve", "-h", "0.0.0.0", "-p", "8080"]


def test_deployment_doc_shows_the_dockerfile_generated_for_iris(iris_context):
    from .doc_blocks import blocks

    [shown] = [block.code for block in blocks(REPO / "docs" / "deployment.md") if block.language == "dockerfile"]
    assert shown + "\n" == (iris_context / "Dockerfile").read_text()


def test_context_holds_the_model_the_wheel_and_the_steps(iris_context):
    assert digests(iris_context / "model") == digests(IRIS)
    assert (iris_context / "steps.py").read_text() == Path(docker.steps.__file__).read_text()
    assert sorted(path.name for path in iris_context.iterdir()) == [
        "Dockerfile", "dist", "model", "requirements.txt", "steps.py"]
    [wheel] = (iris_context / "dist").glob("scoring_server-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "scoring_server/cli.py" in names and "flavors/__init__.py" in names
    assert "scoring_server/deploy/templates/docker/Dockerfile" in names  # package data, for installed copies
    assert not any(name.startswith("tests/") for name in names)


def test_generate_refuses_what_it_cannot_use_in_one_line(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    cases = {(str(IRIS), str(tmp_path / "taken")): "is not an empty directory",
             (str(tmp_path), str(tmp_path / "new")): "is not a model directory (it has no MLmodel file)"}
    for (model, outdir), message in cases.items():
        result = run_cli("generate-dockerfile", "-m", model, "-d", outdir)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [f"Error: {result.stderr.splitlines()[0].removeprefix('Error: ')}"]
        assert message in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "taken" / "file").read_text() == "mine"


def test_build_docker_without_a_runtime_says_so_in_one_line(tmp_path):
    result = run_cli("build-docker", "-m", str(IRIS), "-n", "iris", env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: {docker.NO_RUNTIME}"]
    assert "generate-dockerfile" in result.stderr


def fake_runtime(bin_dir: Path, name: str, exit_code: int) -> Path:
    """An executable ``name`` that records its arguments and a copy of its build context, then exits."""
    record = bin_dir / f"{name}.record"
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\necho "$@" > {record}.args\n/bin/cp -r "$4" {record}\necho building\n'
                      f"exit {exit_code}\n")
    script.chmod(0o755)
    return record


def test_build_docker_runs_the_first_runtime_found_and_reports_its_failure(tmp_path):
    """podman before buildah (PATH holds only these two), given the context of a models:/ URI (copied from the
    registry as ``serve -m`` loads it) with --base-image; its output streams through; its failure is one line."""
    from click.testing import CliRunner

    from scoring_server.cli import main

    registry = {"SCORING_SERVER_REGISTRY_URI": str(tmp_path / "registry")}
    registered = CliRunner().invoke(main, ["registry", "register", "flowers", str(IRIS)], env=registry)
    assert registered.exit_code == 0, registered.output
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_runtime(bin_dir, "buildah", 0)
    record = fake_runtime(bin_dir, "podman", 3)
    result = run_cli("build-docker", "-m", "models:/flowers/1", "-n", "iris:1", "--base-image",
                     "python:3.12-slim-bookworm", env={**os.environ, **registry, "PATH": str(bin_dir)})
    assert result.returncode == 1
    assert result.stdout == "building\n"
    assert result.stderr.splitlines() == ["Error: `podman build` failed (exit 3); its output is above"]
    args = Path(f"{record}.args").read_text().split()
    assert args[:3] == ["build", "-t", "iris:1"]
    assert not Path(args[3]).exists()  # the temporary context is gone
    assert instructions((record / "Dockerfile").read_text())[0] == "FROM python:3.12-slim-bookworm"
    assert digests(record / "model") == digests(IRIS)
    assert docker.build_command("buildah", "iris", Path("ctx")) == ["buildah", "bud", "-t", "iris", "ctx"]


def test_context_requirements_are_the_models_without_mlflow(iris_context):
    model_lines = (IRIS / "requirements.txt").read_text().splitlines()
    assert model_lines[0] == "mlflow==3.17.2"
    assert (iris_context / "requirements.txt").read_text().splitlines() == model_lines[1:]


class ContextServer(CommandServer):
    """A server started by a command from ``cwd`` (not the checkout: ``python -m`` must import the installed
    scoring-server, not the source tree)."""

    def __init__(self, cmd: list[str], cwd: Path, port: int, env: dict[str, str]) -> None:
        self.cwd = cwd
        super().__init__(cmd, port, env)

    def _start(self, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(self.cmd, cwd=self.cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)


def image_steps(dockerfile: str) -> list[list[str]]:
    """The argv of every steps.py line of the Dockerfile (RUN and CMD), in order."""
    steps = []
    for line in instructions(dockerfile):
        if line.startswith(f"RUN {STEPS}"):
            steps.append(shlex.split(line.removeprefix("RUN ")))
        elif line.startswith("CMD "):
            steps.append(json.loads(line.removeprefix("CMD ")))
    return steps


def healthcheck_code(dockerfile: str) -> str:
    line = next(line for line in instructions(dockerfile) if line.startswith("HEALTHCHECK"))
    return json.loads(line.split(" CMD ", 1)[1])[2]


@pytest.mark.heavy
def test_image_recipe_in_a_fresh_virtualenv(iris_context, tmp_path):
    """The Dockerfile's own steps.py lines, run with a new venv's python from the build context (the model at
    MODEL_DIR, loopback instead of 0.0.0.0:8080): install, check, serve, and the HEALTHCHECK against it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "MODEL_DIR": str(iris_context / "model")}
    dockerfile = (iris_context / "Dockerfile").read_text()
    *build_steps, serve_step = image_steps(dockerfile)
    assert [step[2] for step in build_steps] == ["install", "check"]
    for step in build_steps:
        done = subprocess.run([python, str(iris_context / "steps.py"), *step[2:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "scores its serving input example" in done.stdout
    assert subprocess.run([python, "-m", "pip", "show", "mlflow"], capture_output=True).returncode != 0

    port = free_port()
    flags = " ".join(serve_step[3:]).replace("-h 0.0.0.0 -p 8080", f"-h 127.0.0.1 -p {port}").split()
    server = ContextServer([python, str(iris_context / "steps.py"), "serve", *flags], tmp_path, port,
                           {"MODEL_DIR": str(iris_context / "model"), "SCORING_SERVER_WORKERS": "2"})
    try:
        assert server.get("/ping").status_code == 200
        body = json.loads((IRIS / "serving_input_example.json").read_text())
        answer = server.post(body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == InProcessServer(IRIS).post(body).json()
        deadline = time.monotonic() + 30  # /ping answers once the first worker is up; the second boots meanwhile
        while len(worker_pids(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(worker_pids(server.process.pid)) == 2  # SCORING_SERVER_WORKERS reached the server
        assert server.get("/version").text == InProcessServer(IRIS).get("/version").text  # the wheel of this source
        health = healthcheck_code(dockerfile).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        assert subprocess.run([python, "-c", health], timeout=30).returncode == 0
    finally:
        server.stop()


def answering_runtime() -> str:
    """The container runtime to test with; skips (the one allowed skip) when none is installed or answers."""
    runtime = docker.find_runtime()
    if runtime is None:
        pytest.skip("no container runtime on this machine (docker/podman/buildah)")
    info = subprocess.run([runtime, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip(f"no container runtime on this machine (docker/podman/buildah): {runtime} is installed but "
                    f"`{runtime} info` fails: {(info.stderr or info.stdout).strip().splitlines()[-1]}")
    return runtime


@pytest.mark.heavy
def test_built_image_serves_the_model(tmp_path):
    """End to end where a runtime answers: build-docker, run the image on a loopback port, /ping, score."""
    runtime = answering_runtime()
    image = "scoring-server-test-iris:e2e"
    built = run_cli("build-docker", "-m", str(IRIS), "-n", image)
    if built.returncode != 0:
        pytest.fail(f"{runtime} is here but building the image failed (is the base image python:3.11-slim "
                    f"pullable or loaded?):\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    if runtime == "buildah":  # builds images but does not run containers
        return
    port = free_port()
    name = f"scoring-server-test-{port}"
    subprocess.run([runtime, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", image], check=True,
                   timeout=120)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if answers_ping(url, timeout=2):
                break
            time.sleep(0.5)
        else:
            logs = subprocess.run([runtime, "logs", name], capture_output=True, text=True).stderr
            pytest.fail(f"the container did not answer /ping in 120 s:\n{logs}")
        body = json.loads((IRIS / "serving_input_example.json").read_text())
        answer = requests.post(f"{url}/invocations", json=body, timeout=30)
        assert answer.json() == InProcessServer(IRIS).post(body).json()
    finally:
        subprocess.run([runtime, "rm", "-f", name], capture_output=True, timeout=60)
        shutil.rmtree(tmp_path, ignore_errors=True)
