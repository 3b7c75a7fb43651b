"""Batch scoring benchmark (issue 16): ``scoring-server predict`` against ``mlflow models predict``.

Rows/s end to end (start-up, read, score, write ``{"predictions": [...]}`` JSON, as MLflow writes; also
ours writing CSV, the input's columns plus the prediction, which MLflow does not offer) and
peak RSS of each command on the same iris files, in interleaved rounds (each round runs every command
once), medians reported. MLflow's ``predict`` reads JSON and CSV only, so the Parquet input of ours is
set against MLflow on the CSV file of the same rows. Start-up is the time of a one-row file.

    .venv/bin/python scripts/bench_batch.py --rows 1000000 10000000 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
IRIS = REPO / "tests" / "fixtures" / "mlflow-models" / "iris"
OURS = str(REPO / ".venv" / "bin" / "scoring-server")
MLFLOW = str(REPO / ".bench" / "mlflow" / "bin" / "mlflow")
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
PART = 1_000_000  # rows generated at a time, so that making a 10M-row file stays small in memory


def make_inputs(root: Path, rows: int) -> dict[str, Path]:
    """Iris-like CSV and Parquet files of ``rows`` rows (made once, reused by later runs)."""
    csv, parquet = root / f"iris-{rows}.csv", root / f"iris-{rows}.parquet"
    if not (csv.exists() and parquet.exists()):
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = np.random.default_rng(16)
        base = np.array([[5.1, 3.5, 1.4, 0.2], [5.9, 2.8, 4.3, 1.3], [6.7, 3.0, 5.7, 2.3]])
        writer = None
        with open(csv, "w") as handle:
            for start in range(0, rows, PART):
                count = min(PART, rows - start)
                frame = pd.DataFrame(np.round(base[np.arange(count) % 3] + rng.normal(0, 0.2, (count, 4)), 2),
                                     columns=COLUMNS)
                frame.to_csv(handle, index=False, header=start == 0)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(parquet, table.schema)
                writer.write_table(table)
        writer.close()
    return {"csv": csv, "parquet": parquet}


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, the process and its children) of ``command``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def commands(inputs: dict[str, Path], out: Path, mlflow: bool) -> dict[str, list[str]]:
    ours = [OURS, "predict", "-m", str(IRIS), "-q"]
    runs = {
        "ours csv": ours + ["-i", str(inputs["csv"]), "-o", str(out / "ours-csv.json")],
        "ours csv --workers 2": ours + ["-i", str(inputs["csv"]), "-o", str(out / "ours-csv-w2.json"),
                                        "--workers", "2"],
        "ours parquet": ours + ["-i", str(inputs["parquet"]), "-o", str(out / "ours-parquet.json")],
        "ours csv -> csv": ours + ["-i", str(inputs["csv"]), "-o", str(out / "ours-csv.csv")],
    }
    if mlflow:
        runs["mlflow csv"] = [MLFLOW, "models", "predict", "-m", str(IRIS), "-i", str(inputs["csv"]), "-t", "csv",
                              "-o", str(out / "mlflow-csv.json"), "--env-manager", "local"]
    return runs


def same_predictions(out: Path, names: list[str]) -> bool:
    """Whether every command wrote the same predictions (read one at a time)."""
    first = None
    for name in names:
        predictions = json.loads((out / name).read_text())["predictions"]
        first = predictions if first is None else first
        if predictions != first:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_batch"))
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    one_row = make_inputs(args.workdir, 1)
    startup = [measure([OURS, "predict", "-m", str(IRIS), "-q", "-i", str(one_row["csv"]),
                        "-o", str(args.workdir / "one.json")])[0] for _ in range(args.rounds)]
    print(f"start-up (1-row CSV, end to end): median {statistics.median(startup):.2f} s of {args.rounds}")
    print("| rows | command | rows/s | peak RSS MiB | × MLflow rows/s |")
    print("|---|---|---|---|---|")
    for rows in args.rows:
        runs = commands(make_inputs(args.workdir, rows), args.workdir, not args.no_mlflow)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, command in runs.items():
                results[name].append(measure(command))
        outputs = [Path(command[command.index("-o") + 1]).name for command in runs.values()
                   if command[command.index("-o") + 1].endswith(".json")]
        seconds = {name: statistics.median(t for t, _ in values) for name, values in results.items()}
        for name, values in results.items():
            ratio = f"{seconds['mlflow csv'] / seconds[name]:.2f}" if "mlflow csv" in seconds else "-"
            print(f"| {rows:,} | {name} | {rows / seconds[name]:,.0f} | "
                  f"{statistics.median(m for _, m in values):,.0f} | {ratio} |", flush=True)
        print(f"same predictions from every command at {rows:,} rows: {same_predictions(args.workdir, outputs)}")


if __name__ == "__main__":
    main()
