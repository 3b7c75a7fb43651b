#!/usr/bin/env python3
"""Rows/s of scoring_server.spark.spark_udf against mlflow.pyfunc.spark_udf (MLflow 3.17.2 in .bench/mlflow),
on the same data and Spark settings (local[*]), plus a UDF returning a constant: Spark's own floor.

    .venv/bin/python scripts/bench_spark.py [--rows 1000000] [--rounds 5]

Each side runs in its own interpreter (MLflow is never our dependency), one after the other in the
same run: a warm-up job, then ``--rounds`` timed jobs (median reported) writing to Spark's noop
sink; then one job writes the predictions, which are compared row by row.
"""

import argparse  # no `from __future__ import annotations`: pandas_udf reads the hints
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MLFLOW_PYTHON = REPO / ".bench" / "mlflow" / "bin" / "python"
MODEL = REPO / "tests" / "fixtures" / "mlflow-models" / "iris"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SIDES = {"scoring-server": sys.executable, "mlflow": str(MLFLOW_PYTHON), "constant": sys.executable}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)  # one side, in its interpreter
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.data, args.out, args.rounds)))
        return
    ensure_pyspark_for_mlflow()
    with tempfile.TemporaryDirectory() as work:
        data = write_data(Path(work) / "iris.parquet", args.rows)
        results = {side: measure(side, data, Path(work) / side, args.rounds) for side in SIDES}
        same = identical(Path(work) / "scoring-server", Path(work) / "mlflow")
    report(results, args.rows, same)


def ensure_pyspark_for_mlflow() -> None:
    """pyspark in MLflow's virtualenv (made by scripts/bench.sh), installed the first time."""
    if subprocess.run([str(MLFLOW_PYTHON), "-c", "import pyspark"], capture_output=True).returncode:
        subprocess.run([str(MLFLOW_PYTHON), "-m", "pip", "install", "--quiet", "pyspark"], check=True)


def write_data(path: Path, rows: int) -> Path:
    import numpy as np
    import pandas as pd

    pd.DataFrame(np.random.default_rng(0).random((rows, 4)) * 7, columns=COLUMNS).to_parquet(path)
    return path


def measure(side: str, data: Path, out: Path, rounds: int) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": SIDES[side], "PYTHONPATH": str(REPO)}
    done = subprocess.run([SIDES[side], __file__, "--side", side, "--data", str(data), "--out", str(out),
                           "--rounds", str(rounds)], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode:
        sys.exit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_side(side: str, data: str, out: str, rounds: int) -> dict:
    """In the side's interpreter: the warm job's seconds, ``rounds`` times."""
    import warnings

    warnings.simplefilter("ignore", FutureWarning)
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.read.parquet(data)
    scored = frame.select(udf_of(side, spark)(*COLUMNS).alias("prediction"))
    scored.write.format("noop").mode("overwrite").save()  # warm-up: workers started, model loaded
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        scored.write.format("noop").mode("overwrite").save()
        seconds.append(time.perf_counter() - started)
    scored.write.mode("overwrite").parquet(out)
    rows = frame.count()
    spark.stop()
    return {"rows": rows, "seconds": seconds}


def udf_of(side: str, spark):
    if side == "mlflow":
        import mlflow.pyfunc

        return mlflow.pyfunc.spark_udf(spark, str(MODEL), result_type="long", env_manager="local")
    if side == "scoring-server":
        from scoring_server.spark import spark_udf

        return spark_udf(spark, str(MODEL))
    import numpy as np
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("long")
    def constant(a: pd.Series, b: pd.Series, c: pd.Series, d: pd.Series) -> pd.Series:
        return pd.Series(np.zeros(len(a), dtype=np.int64))

    return constant


def identical(ours: Path, theirs: Path) -> bool:
    import pandas as pd

    def read(path: Path):
        return pd.concat(pd.read_parquet(part) for part in sorted(path.glob("part-*.parquet")))["prediction"]

    return read(ours).tolist() == read(theirs).tolist()


def report(results: dict, rows: int, same: bool) -> None:
    rates = {side: rows / statistics.median(result["seconds"]) for side, result in results.items()}
    print(f"| UDF ({rows:,} iris rows, local[*], warm job) | median s | rows/s | vs MLflow |")
    print("|---|---|---|---|")
    for side, rate in rates.items():
        median = statistics.median(results[side]["seconds"])
        print(f"| {side} | {median:.2f} | {rate:,.0f} | {rate / rates['mlflow']:.2f}x |")
    print(f"\npredictions identical to MLflow's: {same}")


if __name__ == "__main__":
    main()
