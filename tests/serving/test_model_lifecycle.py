"""Unloaded and replaced models free their memory in threaded workers (batching on).

Each model's scorer owns its batcher, made after the fork and closed when the model is unloaded
or replaced, so neither a batching thread nor its closure keeps an old model alive.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from scoring_server.registry import ModelRegistry
from scoring_server.security.keys import create_key

from ..conftest import FIXTURES, REPO, RunningServer, constant_model, constant_models, worker_pids

ROW = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}
MODELS = 30
PROMOTIONS = 10
SWEEPS = 4
BALLAST_BYTES = 2_000_000
THREADS = 4
# gthread's main loop, its pool, the follower, one batcher per loaded model, and a little slack.
THREAD_BOUND = 1 + THREADS + 1 + 3 + 3


def proc_status(pid: int, field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def worker(server: RunningServer) -> int:
    (pid,) = worker_pids(server.process.pid)
    return pid


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    """Models carrying 2 MB of weights each, so that a leaked copy shows in RSS."""
    return constant_models(tmp_path_factory.mktemp("lifecycle"), MODELS, BALLAST_BYTES)


def test_loading_and_unloading_30_models_keeps_threads_and_memory_bounded(model_root):
    server = RunningServer(None, "--model-root", str(model_root), "--max-loaded-models", "3",
                           "--threads", str(THREADS), "--batching", "on", workers=1)
    try:
        pid = worker(server)
        rss_kib, threads = [], []
        for _ in range(SWEEPS):
            for i in range(MODELS):
                response = requests.post(f"{server.url}/models/m{i}/invocations", json=ROW, timeout=30)
                assert response.json() == {"predictions": [float(i)]}
            rss_kib.append(proc_status(pid, "VmRSS"))
            threads.append(proc_status(pid, "Threads"))
    finally:
        server.stop()
    assert max(threads) <= THREAD_BOUND, f"threads per worker after each sweep: {threads}"
    # Freed memory is not always returned by malloc at once: allow one sweep's worth of models,
    # a third of what leaking them would add over the sweeps.
    assert rss_kib[-1] - rss_kib[0] < MODELS * BALLAST_BYTES / 1024, f"worker RSS (KiB) after each sweep: {rss_kib}"


def test_ten_promotions_keep_threads_bounded(tmp_path):
    registry = ModelRegistry(tmp_path / "registry")
    for i in range(PROMOTIONS + 1):
        registry.register("m", str(constant_model(tmp_path / f"v{i}", float(i), BALLAST_BYTES)))
    registry.transition("m", 1, "Production")
    server = RunningServer("models:/m/Production", "--registry", str(registry.root), "--poll-interval", "0.05",
                           "--threads", str(THREADS), "--batching", "on", workers=1)
    try:
        pid = worker(server)
        threads = []
        for version in range(1, PROMOTIONS + 2):
            registry.transition("m", version, "Production")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                response = requests.post(server.url + "/invocations", json=ROW, timeout=30)
                if response.headers["X-Model-Version"] == str(version):
                    break
                time.sleep(0.05)
            assert response.json() == {"predictions": [float(version - 1)]}
            threads.append(proc_status(pid, "Threads"))
    finally:
        server.stop()
    assert max(threads) <= THREAD_BOUND, f"threads per worker after each promotion: {threads}"


def test_a_many_model_master_imports_what_its_models_need_before_the_fork(tmp_path):
    """Workers share scikit-learn and skops with the master instead of each importing them (~1 s)
    on its first request."""
    models = tmp_path / "models.yaml"
    models.write_text(f"iris: {FIXTURES / 'iris'}\nmissing: {tmp_path / 'missing'}\n")
    code = ("import sys; from scoring_server.app import create_app; from scoring_server.config import load_config; "
            f"create_app(load_config(env={{}}, overrides={{'models_file': {str(models)!r}}})); "
            "print(sorted(m for m in ('sklearn', 'skops.io', 'cloudpickle') if m in sys.modules))")
    before = subprocess.run([sys.executable, "-c", code.replace("create_app(load_config", "(load_config")],
                            cwd=REPO, capture_output=True, text=True, check=True)
    after = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert "'sklearn'" not in before.stdout and "'skops.io'" not in before.stdout
    assert after.stdout.strip() == "['cloudpickle', 'sklearn', 'skops.io']"


@pytest.mark.parametrize("admin", [False, True], ids=["no_admin_api", "admin_api"])
def test_a_many_model_server_leaves_no_temporary_directory(tmp_path, admin):
    temp = tmp_path / "tmp"
    temp.mkdir()
    key = create_key(tmp_path / "keys.json", "ops", ["read", "admin"])[0]
    admin_args = ["--admin-api", "--api-keys", str(tmp_path / "keys.json"), "--allowed-model-roots", str(FIXTURES)]
    # A drain shorter than the test's wait for the master, so that it always exits by itself.
    server = RunningServer(None, "--model-root", str(FIXTURES), "--drain-seconds", "5",
                           *(admin_args if admin else []), workers=2, env={"TMPDIR": str(temp)})
    try:
        during = [p.name for p in temp.iterdir()]
        assert requests.get(server.url + "/models", headers={"X-API-Key": key}, timeout=10).status_code == 200
    finally:
        output = server.stop()
    metrics = [name for name in during if name.startswith("scoring-server-metrics-")]
    assert len(metrics) == 1  # what the workers count (monitoring.multiprocess), summed by whoever is asked
    assert len(during) - len(metrics) == (1 if admin else 0)  # the admin API's changes file, shared by the workers
    assert list(temp.iterdir()) == [], output
