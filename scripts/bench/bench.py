"""Throughput benchmark: scoring-server against the bare floor app and `mlflow models serve`.

Each target runs on its own loopback port with the same worker count; wrk drives them in
interleaved rounds (every scenario on every target, round after round), and the report gives
the median requests/s and latencies over the rounds, with ratios side by side.

    python scripts/bench/bench.py [--rounds 3] [--duration 10] [--mlflow-python .bench/mlflow/bin/python]

Run it through scripts/bench.sh on a fresh machine: that creates the environments first.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "mlflow-models"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass(frozen=True)
class Scenario:
    """One request shape, sent by wrk with a number of connections."""

    name: str
    body: str
    content_type: str = "application/json"
    connections: int = 16
    model: str = "iris"
    ours_args: tuple[str, ...] = ()


def _split(rows: int) -> str:
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW] * rows}})


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("split-1row", _split(1)),
        Scenario("split-1row-nosig", _split(1), model="iris_nosig"),
        Scenario("split-1000rows", _split(1000)),
        Scenario("csv-1000rows", ",".join(COLUMNS) + "\n" + "\n".join([",".join(map(str, ROW))] * 1000) + "\n",
                 "text/csv"),
        Scenario("records-100rows", json.dumps({"dataframe_records": [dict(zip(COLUMNS, ROW))] * 100})),
        # 64 concurrent clients, as configured by default: each worker answers on its event loop and
        # batches what arrives together (scikit-learn's rows are independent).
        Scenario("split-1row-64conn", _split(1), connections=64),
        # The same with 32 threads per worker (a batching thread collects their requests): the way to
        # serve concurrent clients before the event loop batched, kept for models that wait on I/O.
        Scenario("split-1row-64conn-threads", _split(1), connections=64, ours_args=("--threads", "32")),
    )
}


@dataclass
class Target:
    """A server under test: how to start it for a model directory."""

    name: str
    command: callable
    env: dict = field(default_factory=dict)
    cwd: Path = REPO
    headers: dict = field(default_factory=dict)  # sent with every request (an API key, say)
    models: Path = MODELS
    log: Path | None = None  # the server's stderr (its access log), else discarded
    process: subprocess.Popen | None = None
    port: int = 0
    model: str = ""

    def start(self, scenario: Scenario, workers: int) -> None:
        self.start_model(scenario.model, workers, scenario.ours_args if self.name != "floor" and self.name != "mlflow" else ())

    def start_model(self, model: str, workers: int, extra: tuple[str, ...] = ()) -> None:
        """Start this server on a fixture model, on a free port, and wait for /ping."""
        self.stop()
        self.port, self.model = _free_port(), model
        stderr = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(self.models / model, self.port, workers) + list(extra), cwd=self.cwd,
            env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )
        if self.log:
            stderr.close()
        _wait_for_ping(self.port, self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes (master and workers)."""
        return sum(_cpu_seconds(pid) for pid in [self.process.pid, *_descendants(self.process.pid)])

    def worker_rss_mib(self) -> list[float]:
        """Resident memory of each worker (the master's children and their children)."""
        return [_rss_mib(pid) for pid in _descendants(self.process.pid) if _rss_mib(pid) > 0]


def ours(python: str, extra_args: list[str]):
    return lambda model, port, workers: [python, "-m", "scoring_server", "serve", "-m", str(model), "-h", "127.0.0.1",
                                         "-p", str(port), "-w", str(workers), *extra_args]


def floor(python: str):
    def command(model, port, workers):
        return [python, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir",
                str(REPO / "scripts" / "bench"), "--no-control-socket", "floor_app:app"]
    return command


def mlflow(python: str):
    return lambda model, port, workers: [python, "-m", "mlflow", "models", "serve", "-m", str(model), "-h",
                                         "127.0.0.1", "-p", str(port), "-w", str(workers), "--env-manager", "local"]


# The floor app loads the iris estimator from the plain pickle of the iris_nosig fixture.
FLOOR_ENV = {"BENCH_MODEL_PICKLE": str(MODELS / "iris_nosig" / "model.pkl")}


def run_wrk(port: int, scenario: Scenario, duration: int, threads: int, headers: dict | None = None) -> dict:
    """One wrk run; returns requests/s, p50 and p99 latency (ms) and the count of non-2xx answers."""
    headers = {"Content-Type": scenario.content_type, **(headers or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {_lua_string(scenario.body)}\n"
            + "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())
        )
    try:
        output = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{scenario.connections}", f"-d{duration}s", "--latency", "-s", script.name,
             f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _latency_ms(output, "50%"),
        "p99": _latency_ms(output, "99%"),
        "errors": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0,
    }


def benchmark(targets: list[Target], scenarios: list[Scenario], rounds: int, duration: int, workers: int,
              threads: int) -> tuple[dict, dict]:
    """Interleaved rounds; returns results[scenario][target] = list of runs, and worker memory."""
    results: dict = {s.name: {t.name: [] for t in targets} for s in scenarios}
    memory: dict = {}
    for round_number in range(1, rounds + 1):
        for scenario in scenarios:
            for target in targets:
                target.start(scenario, workers)
                run_wrk(target.port, scenario, 2, threads, target.headers)  # warm-up
                cpu_before = target.cpu_seconds()
                result = run_wrk(target.port, scenario, duration, threads, target.headers)
                result["cpu_us"] = (target.cpu_seconds() - cpu_before) / (result["rps"] * duration) * 1e6
                results[scenario.name][target.name].append(result)
                if scenario.name == "split-1row" and round_number == 1:
                    memory[target.name] = target.worker_rss_mib()
                target.stop()
                print(f"round {round_number} {scenario.name:18} {target.name:7} {result['rps']:9.1f} req/s "
                      f"p50 {result['p50']:7.2f} ms p99 {result['p99']:7.2f} ms "
                      f"CPU {result['cpu_us']:6.0f} µs/request errors {result['errors']}",
                      flush=True)
    return results, memory


def report(results: dict, memory: dict, target_names: list[str]) -> str:
    """A markdown table of medians and ratios against the floor app and MLflow."""
    lines = ["| scenario | connections | " + " | ".join(f"{t} req/s" for t in target_names)
             + " | ours/floor | ours/baseline | baseline/floor | auth/ours | ours/unmonitored | ours/mlflow"
             + " | ours p50 / p99 ms"
             + " | floor p50 / p99 ms |",
             "|---" * (8 + len(target_names) + 2) + "|"]
    for name, by_target in results.items():
        med = {t: statistics.median(r["rps"] for r in runs) for t, runs in by_target.items() if runs}
        lat = {t: (statistics.median(r["p50"] for r in runs), statistics.median(r["p99"] for r in runs))
               for t, runs in by_target.items() if runs}
        ratio = lambda a, b: f"{med[a] / med[b]:.2f}×" if a in med and med.get(b) else "–"
        cells = [f"{med[t]:,.0f}" if t in med else "–" for t in target_names]
        lat_cell = lambda t: f"{lat[t][0]:.2f} / {lat[t][1]:.2f}" if t in lat else "–"
        lines.append(f"| {name} | {SCENARIOS[name].connections} | " + " | ".join(cells)
                     + f" | {ratio('ours', 'floor')} | {ratio('ours', 'baseline')} | {ratio('baseline', 'floor')}"
                     + f" | {ratio('ours+auth', 'ours')} | {ratio('ours', 'unmonitored')}"
                     + f" | {ratio('ours', 'mlflow')} | {lat_cell('ours')} | {lat_cell('floor')} |")
    lines += ["", "Server CPU per request (µs, user + system of master and workers; medians):", "",
              "| scenario | " + " | ".join(target_names) + " |", "|---" * (1 + len(target_names)) + "|"]
    for name, by_target in results.items():
        cpu = {t: statistics.median(r["cpu_us"] for r in runs) for t, runs in by_target.items() if runs}
        lines.append(f"| {name} | " + " | ".join(f"{cpu[t]:.0f}" if t in cpu else "–" for t in target_names) + " |")
    if "unmonitored" in target_names:
        lines += ["", "Monitoring on against off, round by round (each pair ran back to back; medians of the "
                      "per-round ratios, which this noisy machine's slow phases affect least):", ""]
        for name, by_target in results.items():
            pairs = list(zip(by_target["ours"], by_target["unmonitored"]))
            rps = statistics.median(on["rps"] / off["rps"] for on, off in pairs)
            cpu = statistics.median(on["cpu_us"] / off["cpu_us"] for on, off in pairs)
            lines.append(f"- {name}: throughput {rps:.3f}×, CPU per request {cpu:.3f}×")
    lines.append("")
    for target, values in memory.items():
        lines.append(f"- worker RSS, {target}: " + ", ".join(f"{v:.1f} MiB" for v in values))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--mlflow-python", help="python of a virtualenv with mlflow installed (omit to skip MLflow)")
    parser.add_argument("--ours-args", default="", help="extra `scoring-server serve` arguments")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor app")
    parser.add_argument("--baseline", help="a checkout of another revision of scoring-server (a git worktree) to "
                                           "run side by side as the 'baseline' target")
    parser.add_argument("--auth", action="store_true",
                        help="also run 'ours+auth': ours with an API keys file, every request sending a key")
    parser.add_argument("--monitoring", action="store_true",
                        help="also run 'unmonitored': ours without metrics, access log and drift sampling; both "
                             "serve models with a training baseline, and ours writes JSON access-log lines to a file")
    parser.add_argument("--output", help="write the markdown table to this file too")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk); scripts/bench.sh installs it")

    targets = [Target("ours", ours(sys.executable, args.ours_args.split()))]
    if args.monitoring:
        targets = _monitoring_targets(sys.executable, args.ours_args.split())
    if not args.no_floor:
        targets.append(Target("floor", floor(sys.executable), env=FLOOR_ENV))
    if args.auth:
        targets.append(_with_api_key(sys.executable, args.ours_args.split()))
    if args.baseline:
        targets.append(Target("baseline", ours(sys.executable, []), cwd=Path(args.baseline)))
    if args.mlflow_python:
        bin_dir = str(Path(args.mlflow_python).parent)
        targets.append(Target("mlflow", mlflow(args.mlflow_python),
                              env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}))
    scenarios = [SCENARIOS[name] for name in args.scenarios.split(",")]
    try:
        results, memory = benchmark(targets, scenarios, args.rounds, args.duration, args.workers, args.threads)
    finally:
        for target in targets:
            target.stop()
    table = report(results, memory, [t.name for t in targets])
    print("\n" + table)
    if args.output:
        Path(args.output).write_text(table + "\n")


def _with_api_key(python: str, extra_args: list[str]) -> Target:
    """Ours with API keys on: a keys file holding one ``score`` key, which every request sends."""
    from scoring_server.security.keys import create_key

    keys_file = Path(tempfile.mkdtemp(prefix="bench-keys-")) / "keys.json"
    key, _ = create_key(keys_file, "bench", ["score"])
    return Target("ours+auth", ours(python, [*extra_args, "--api-keys", str(keys_file)]),
                  headers={"Authorization": f"Bearer {key}"})


def _monitoring_targets(python: str, extra_args: list[str]) -> list[Target]:
    """Ours as configured by default (metrics on, drift sampled, here with JSON access-log lines to a file)
    against ours with all of that off, both serving copies of the fixtures with a training baseline."""
    work = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    models = work / "models"
    shutil.copytree(MODELS, models)
    training = work / "training.csv"
    rows = [[round(v * (0.8 + 0.4 * ((i * 7919 + j * 104729) % 1000) / 1000), 2) for j, v in enumerate(ROW)]
            for i in range(2000)]
    training.write_text(",".join(COLUMNS) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    for model in ("iris", "iris_nosig"):
        subprocess.run([python, "-m", "scoring_server", "baseline", "-m", str(models / model), "-i", str(training)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    off = ["--no-metrics", "--access-log", "off", "--drift-sample-fraction", "0"]
    return [Target("ours", ours(python, [*extra_args, "--access-log", "json"]), models=models, log=work / "ours.log"),
            Target("unmonitored", ours(python, [*extra_args, *off]), models=models)]


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_ping(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer /ping")


def _descendants(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            child = int(stat.parent.name)
            children += [child, *_descendants(child)]
    return children


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


if __name__ == "__main__":
    main()
