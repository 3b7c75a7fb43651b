"""Every shell and Python block of README.md and docs/ runs as pasted, in order, in a fresh
directory holding what a checkout offers (scripts/, conf/), against real servers (a ``scoring-server serve`` block starts one in the background and
waits for /ping). Blocks that cannot run here are marked ``<!-- not run: REASON -->`` and listed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port
from tests.doc_blocks import blocks, placeholders, script

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_DOCUMENTS = [document for document in DOCUMENTS if any(block.runnable for block in blocks(document))]
#: The blocks that cannot run here, by nature (document, reason); a new one must be added here knowingly.
NOT_RUN = [
    ("README.md", "demo.sh serves until stopped and test.sh runs this test suite"),
    ("README.md", "installs into the active environment (the test runs with the package installed)"),
    ("deployment.md", "needs a container runtime (docker, podman or buildah) and the python base image"),
    ("deployment.md", "needs a Kubernetes cluster (kubectl)"),
    ("monitoring.md", "reads the files a capturing server wrote (DIR is its capture directory)"),
    ("monitoring.md", "replays a request from the files a capturing server wrote"),
    ("monitoring.md", "reads the files a capturing server wrote"),
    ("performance.md", "benchmarks for minutes, installing wrk and MLflow"),
    ("protocol.md", "needs a chat model"),
    ("quickstart.md", "installs into a new environment (the test runs with the package installed)"),
    ("registry.md", "needs a PostgreSQL server (tests/registry/postgres_server.py starts one)"),
    ("registry.md", "needs an MLflow tracking server (tests/registry/test_mlflow_registry.py starts one)"),
    ("security.md", "needs a deployed server (scoring.example) and its key"),
    ("security.md", "needs a certificate and its key from your certificate authority"),
]
DOCUMENT_SECONDS = 240
ERROR_ANSWER = re.compile(r'^\{"error_code"', re.MULTILINE)


def test_the_blocks_not_run_are_the_known_few() -> None:
    not_run = [(document.name, block.not_run) for document in DOCUMENTS for block in blocks(document)
               if block.not_run is not None]
    assert not_run == NOT_RUN, "\n".join(f"{name}: {reason}" for name, reason in not_run)


def test_no_block_has_a_placeholder() -> None:
    found = {block.where: placeholders(block) for document in DOCUMENTS for block in blocks(document)
             if block.runnable and placeholders(block)}
    assert found == {}


@pytest.mark.heavy
@pytest.mark.parametrize("document", RUN_DOCUMENTS, ids=lambda document: document.name)
def test_document_runs_as_pasted(document: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    work = tmp_path / "work"
    logs.mkdir()
    _checkout(work)
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SCORING_SERVER_")}
    environment.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}", HOME=str(tmp_path),
                       SCORING_SERVER_PORT=str(port), __LOGS=str(logs), REPO=str(REPO))
    finished = subprocess.run(["bash", "-c", script(document, port)], cwd=work, env=environment,
                              timeout=DOCUMENT_SECONDS, capture_output=True, text=True)
    current = (logs / "current").read_text().strip()
    failed_output = "" if current == "done" else (logs / f"block-{current}.out").read_text()
    assert (finished.returncode, current) == (0, "done"), (
        f"{document.name}: the block at line {current} failed (exit {finished.returncode}):\n{failed_output}"
        f"\nserver log:\n{_tail(logs / 'server.log')}")
    errors = {path.name: path.read_text() for path in logs.glob("block-*.out") if ERROR_ANSWER.search(path.read_text())}
    assert errors == {}, f"{document.name}: blocks answered errors"


def _checkout(work: Path) -> None:
    """What the documents' commands find in a checkout: the scripts, and a copy of conf/ to edit."""
    work.mkdir()
    (work / "scripts").symlink_to(REPO / "scripts")
    shutil.copytree(REPO / "conf", work / "conf")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else "(none)"
