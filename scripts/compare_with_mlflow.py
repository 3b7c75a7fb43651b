"""Differential check: send a generated corpus of requests (scripts/differential/cases.py: every
signature column type and tensor specs × every JSON format and CSV × every kind of value, plus
wrong shapes) to `mlflow models serve` and to scoring-server on the same models, and list every
answer whose status, error_code or predictions (when both score) differ.

    python scripts/compare_with_mlflow.py --mlflow-python .bench/mlflow/bin/python [--only PREFIX] [--show-same]

The models are written by MLflow itself (scripts/differential/build_models.py, run by the MLflow
python), besides the fixtures under tests/fixtures/mlflow-models. Every server runs on a loopback
port with one worker. Differences listed in scripts/differential/deliberate.py (each documented in
docs/protocol.md) are reported but do not fail; the exit status is 1 when any other remains.
(scripts/bench.sh, or scripts/test.sh for the heavy tests, creates .bench/mlflow.)
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path[:0] = [str(SCRIPTS), str(SCRIPTS / "bench")]
from bench import MODELS, Target, mlflow, ours  # noqa: E402
from differential.cases import COLUMN_TYPES, Case, all_cases  # noqa: E402
from differential.deliberate import Outcome, explanation  # noqa: E402

GENERATED_MODELS = (*COLUMN_TYPES, "table", "tensor", "named_tensors")


def outcome(port: int, case: Case) -> Outcome:
    """(status, predictions or error_code) of one request; a body that is not JSON as ``text:...``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/invocations", body=case.body, headers={"Content-Type": case.content_type})
        response = connection.getresponse()
        status, text = response.status, response.read().decode(errors="replace")
    finally:
        connection.close()
    try:
        payload = json.loads(text)
    except ValueError:
        return status, f"text:{text[:80]}"
    if isinstance(payload, dict) and "error_code" in payload and status >= 400:
        return status, payload["error_code"]
    return status, payload.get("predictions", payload) if isinstance(payload, dict) else payload


def build_models(mlflow_python: str, out: Path) -> None:
    """The generated models, written by MLflow into ``out``."""
    subprocess.run([mlflow_python, str(SCRIPTS / "differential" / "build_models.py"), str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def servers_for(model: str, mlflow_python: str, generated: Path) -> tuple[Target, Target]:
    """(mlflow, ours), started on ``model``."""
    env = {"PATH": f"{Path(mlflow_python).parent}:{os.environ['PATH']}"}
    models = generated if model in GENERATED_MODELS else MODELS
    pair = (Target("mlflow", mlflow(mlflow_python), env=env, models=models),
            Target("ours", ours(sys.executable, []), models=models))
    for server in pair:
        server.start_model(model, workers=1)
    return pair


def run_model(model: str, cases: list[Case], mlflow_python: str, generated: Path) -> list[tuple]:
    """(case, mlflow's outcome, ours) for every case of one model."""
    pair = servers_for(model, mlflow_python, generated)
    try:
        return [(case, *(outcome(server.port, case) for server in pair)) for case in cases]
    finally:
        for server in pair:
            server.stop()


def compare(mlflow_python: str, cases: list[Case]) -> list[tuple]:
    """Every case's outcomes, the models served side by side (four at a time)."""
    by_model: dict[str, list[Case]] = {}
    for case in cases:
        by_model.setdefault(case.model, []).append(case)
    with tempfile.TemporaryDirectory() as tmp:
        build_models(mlflow_python, Path(tmp))
        with ThreadPoolExecutor(4) as pool:
            runs = [pool.submit(run_model, model, model_cases, mlflow_python, Path(tmp))
                    for model, model_cases in by_model.items()]
            return [result for run in runs for result in run.result()]


def open_differences() -> set[str]:
    """The case ids of differences known and still open (not deliberate: bugs to fix)."""
    lines = (SCRIPTS / "differential" / "open_differences.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def report(results: list[tuple], show_same: bool, known_open: set[str]) -> int:
    """Print the differences and a summary; the count of failures: unexplained differences, and
    listed open ones that agree (or are explained) now and must leave the list."""
    unexplained, explained, still_open, fixed = 0, Counter(), 0, []
    for case, theirs, mine in results:
        why = explanation(case, theirs, mine) if theirs != mine else None
        if theirs == mine or why:
            if case.id in known_open:
                fixed.append(case.id)
            if why:
                explained[why] += 1
            elif show_same:
                print(f"same  {case.id:60} {theirs}")
        elif case.id in known_open:
            still_open += 1
            print(f"open  {case.id:60} mlflow={theirs}  ours={mine}")
        else:
            unexplained += 1
            print(f"DIFF  {case.id:60} mlflow={theirs}  ours={mine}")
    for why, count in explained.most_common():
        print(f"deliberate ({count}): {why}")
    for case_id in fixed:
        print(f"FIXED {case_id}: agrees now, remove it from differential/open_differences.txt")
    print(f"cases: {len(results)}, same: {sum(t == m for _, t, m in results)}, "
          f"deliberate: {sum(explained.values())}, open: {still_open}, unexplained: {unexplained}, "
          f"fixed but listed: {len(fixed)}")
    return unexplained + len(fixed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-python", required=True, help="python of a virtualenv with mlflow 3.17 installed")
    parser.add_argument("--only", default="", help="run only the cases whose id starts with this")
    parser.add_argument("--show-same", action="store_true", help="list the agreeing answers too")
    args = parser.parse_args()
    cases = [case for case in all_cases() if case.id.startswith(args.only)]
    return 1 if report(compare(args.mlflow_python, cases), args.show_same, open_differences()) else 0


if __name__ == "__main__":
    sys.exit(main())
