"""Container images of a model: the build context (``generate-dockerfile``) and its build (``build-docker``).

A build context holds the Dockerfile, a copy of the model (at MLflow's ``/opt/ml/model`` in the image), its
requirements without MLflow, a wheel of this scoring-server and ``steps.py``, the script that every step of the
image runs (install, check, serve).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from string import Template

import yaml

from . import steps

#: Tried in this order; the first on PATH builds the image.
RUNTIMES = ("docker", "podman", "buildah")
NO_RUNTIME = ("no container runtime found on PATH (docker, podman or buildah): install one (e.g. `apt-get install "
              "podman`), or write the build context with `scoring-server generate-dockerfile -m MODEL -d DIR`, "
              "which needs none, and build it elsewhere")
_DOCKERFILE = Path(__file__).parent / "templates" / "docker" / "Dockerfile"
#: The checkout scoring-server is installed from (``pip install -e``), whose source the image's wheel is built from.
_PROJECT = Path(__file__).resolve().parents[2]


class DeployError(Exception):
    """A build context or image that cannot be made; the message says why."""


def write_build_context(model_uri: str, outdir: Path, base_image: str | None = None) -> Path:
    """Write the build context of the model ``model_uri`` names into ``outdir`` (new or empty); its Dockerfile."""
    model_dir = local_model_dir(model_uri)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise DeployError(f"{outdir} exists and is not an empty directory: give a new one")
    shutil.copytree(model_dir, outdir / "model", dirs_exist_ok=True)
    shutil.copy2(steps.__file__, outdir / "steps.py")
    (outdir / "requirements.txt").write_text(served_requirements(model_dir))
    build_wheel(outdir / "dist")
    dockerfile = outdir / "Dockerfile"
    dockerfile.write_text(render_dockerfile(base_image or default_base_image(model_dir), model_dir.name))
    return dockerfile


def local_model_dir(model_uri: str) -> Path:
    """The model directory ``model_uri`` names, as ``serve -m`` finds it (``models:/`` through the registry)."""
    from ..registry import RegistryError, model_directory

    try:
        return model_directory(model_uri)
    except RegistryError as exc:
        raise DeployError(str(exc)) from None


def served_requirements(model_dir: Path) -> str:
    """The requirement lines the model's environment is built from (``--env-manager virtualenv`` reads the same),
    MLflow left out: serving needs none."""
    from ..environments.spec import read_spec

    return "".join(f"{line.text}\n" for line in read_spec(model_dir).requirements)


def default_base_image(model_dir: Path) -> str:
    """``python:X.Y-slim`` of the Python the model was saved with (its python_env.yaml), else of this one."""
    env_file = model_dir / "python_env.yaml"
    saved = yaml.safe_load(env_file.read_text()) if env_file.is_file() else None
    version = str(saved.get("python", "")) if isinstance(saved, dict) else ""
    major_minor = ".".join(version.split(".")[:2]) if version.count(".") >= 1 else "{}.{}".format(*sys.version_info)
    return f"python:{major_minor}-slim"


def render_dockerfile(base_image: str, model_name: str) -> str:
    return Template(_DOCKERFILE.read_text()).substitute(base_image=base_image, model_name=model_name)


def build_wheel(dist: Path) -> Path:
    """A wheel of this scoring-server in ``dist``, built with pip from a copy of its source (a copy, so that
    setuptools' build/ directory of the checkout never leaks stale files into the wheel)."""
    if not (_PROJECT / "setup.cfg").is_file():
        raise DeployError(f"scoring-server's source is not beside its package ({_PROJECT}): the image installs a "
                          "wheel built from it, so install scoring-server from a checkout (pip install -e CHECKOUT)")
    with tempfile.TemporaryDirectory(prefix="scoring-server-source-") as tmp:
        source = Path(tmp) / "source"
        shutil.copytree(_PROJECT, source, ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "__pycache__", "tests"))
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist),
                               str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        raise DeployError(f"building scoring-server's wheel failed: {(done.stderr or done.stdout).strip()}")
    return next(dist.glob("*.whl"))


def find_runtime() -> str | None:
    """The first container runtime of :data:`RUNTIMES` on PATH, None when there is none."""
    return next((name for name in RUNTIMES if shutil.which(name)), None)


def build_command(runtime: str, image: str, context: Path) -> list[str]:
    return [runtime, "bud" if runtime == "buildah" else "build", "-t", image, str(context)]


def build_image(model_uri: str, image: str, base_image: str | None = None) -> str:
    """Build the image ``image`` of the model with the first runtime found, its output streamed; that runtime."""
    runtime = find_runtime()
    if runtime is None:
        raise DeployError(NO_RUNTIME)
    with tempfile.TemporaryDirectory(prefix="scoring-server-image-") as tmp:
        context = Path(tmp)
        write_build_context(model_uri, context, base_image)
        returncode = subprocess.run(build_command(runtime, image, context)).returncode
    if returncode != 0:
        raise DeployError(f"`{runtime} build` failed (exit {returncode}); its output is above")
    return runtime
