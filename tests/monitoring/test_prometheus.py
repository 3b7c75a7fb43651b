"""A real Prometheus server scrapes a real scoring server (2 workers, one SIGKILLed mid-run): a PromQL
query of the requests counted returns exactly the number of requests answered."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from ..conftest import RunningServer, free_port, stop_process
from .test_metrics import Traffic, held_request, save_pid_model, wait_for_workers

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    """``prometheus`` on a free loopback port, scraping ``target`` every second, its data in ``folder``."""

    def __init__(self, target: str, folder: Path) -> None:
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail("prometheus is not installed: apt-get install prometheus (scripts/test.sh does)")
        config = folder / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                          f"scrape_configs:\n  - job_name: scoring-server\n    static_configs:\n"
                          f"      - targets: ['{target}']\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(folder / "prometheus.log", "w+")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, promql: str) -> list:
        """The instant vector ``promql`` evaluates to now; [] until Prometheus is up."""
        try:
            response = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        except requests.ConnectionError:
            assert self.process.poll() is None, self.output()
            return []
        assert response.status_code == 200, response.text
        return response.json()["data"]["result"]

    def value_scraped_after(self, promql: str, moment: float, timeout: float = 30.0) -> float:
        """``promql``'s value once Prometheus holds a scrape made after ``moment`` (Unix time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            scraped = self.query("max(timestamp(scoring_server_requests_total))")
            if scraped and float(scraped[0]["value"][1]) > moment:
                (result,) = self.query(promql)
                return float(result["value"][1])
            time.sleep(0.2)
        raise AssertionError(f"no scrape after the last request within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@pytest.fixture
def prometheus_of(tmp_path):
    """Start Prometheus scraping a target; stopped whatever the test does."""
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(target, tmp_path))
        return started[-1]

    yield start
    for prometheus in started:
        prometheus.stop()


def test_prometheus_counts_exactly_the_requests_answered_across_a_killed_worker(tmp_path, prometheus_of):
    hold_file = tmp_path / "held-by"
    server = RunningServer(save_pid_model(tmp_path), workers=2, env={"PID_MODEL_HOLD_FILE": str(hold_file)})
    try:
        prometheus = prometheus_of(f"127.0.0.1:{server.port}")
        master = server.process.pid
        traffic = Traffic()
        traffic.spread(server, wait_for_workers(master, 2))
        victim, held = held_request(server, hold_file)
        os.kill(victim, signal.SIGKILL)
        held.join(timeout=30)
        wait_for_workers(master, 2, gone=victim)
        traffic.send(server, 30, 5)
        last_answer = time.time()
        assert prometheus.value_scraped_after("sum(scoring_server_requests_total)", last_answer) == traffic.answered
        assert prometheus.value_scraped_after('sum(scoring_server_requests_total{outcome="client_error"})',
                                              last_answer) == traffic.failed
    finally:
        server.stop()
