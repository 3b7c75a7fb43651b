"""``scoring-server predict --engine spark``: score a Parquet or CSV dataset with a Spark session."""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .udf import ModelUdf, spark_udf

PREDICTION = "prediction"


class SparkJobError(Exception):
    """The job could not run or a row failed: one line for the command line."""


def spark_session(master: str | None = None) -> SparkSession:
    """The configured session: ``master`` (or ``SPARK_MASTER``, else ``local[*]``); Spark's own
    settings (``SPARK_HOME``, ``spark-defaults.conf``, ``PYSPARK_SUBMIT_ARGS``) apply as usual.
    Python workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    builder = SparkSession.builder.appName("scoring-server predict").config("spark.ui.showConsoleProgress", "false")
    spark = builder.master(master or os.environ.get("SPARK_MASTER") or "local[*]").getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")  # a failed task is our one-line error, not Spark's log of it
    return spark


def run_predict_job(model_uri: str, input_path: str, output_path: str, input_format: str | None = None,
                    output_format: str | None = None, master: str | None = None) -> None:
    """Write the input's columns plus the predictions (one column per output) to ``output_path``
    (a Spark output directory, replaced)."""
    from pyspark.errors import AnalysisException, PySparkRuntimeError, PythonException

    from flavors import ModelLoadError

    from ..registry import RegistryError

    try:
        spark = spark_session(master)
    except PySparkRuntimeError as exc:
        raise SparkJobError(f"cannot start Spark (Java 17+ is needed: apt-get install openjdk-17-jre-headless): "
                            f"{str(exc).splitlines()[0]}") from None
    try:
        data = read_dataset(spark, input_path, input_format or _format_of(input_path))
        scored = with_predictions(data, spark_udf(spark, model_uri))
        write_dataset(scored, output_path, output_format or _format_of(output_path))
    except PythonException as exc:
        raise SparkJobError(worker_error(exc)) from None
    except AnalysisException as exc:
        raise SparkJobError(str(exc).splitlines()[0]) from None
    except (ModelLoadError, RegistryError, ValueError) as exc:
        raise SparkJobError(f"cannot score with {model_uri!r}: {exc}") from None


def read_dataset(spark: SparkSession, path: str, file_format: str) -> DataFrame:
    if file_format == "csv":  # typed from the values, so that a bad cell reaches the signature check
        return spark.read.csv(path, header=True, inferSchema=True)
    if file_format == "parquet":
        return spark.read.parquet(path)
    raise SparkJobError(f"--engine spark reads parquet or csv datasets, not {file_format}: use -t parquet|csv")


def with_predictions(data: DataFrame, predictions: ModelUdf) -> DataFrame:
    """``data`` plus the prediction column, or one column per field of a struct of outputs; a model
    without named inputs gets every column."""
    scored = data.withColumn(PREDICTION, predictions(*([] if predictions.input_names else data.columns)))
    result = scored.schema[PREDICTION].dataType
    if isinstance(result, T.StructType):
        fields = [F.col(f"{PREDICTION}.{field.name}").alias(field.name) for field in result.fields]
        return scored.select(*data.columns, *fields)
    return scored


def write_dataset(data: DataFrame, path: str, file_format: str) -> None:
    writer = data.write.mode("overwrite")
    if file_format == "csv":
        writer.csv(path, header=True)
    elif file_format == "parquet":
        writer.parquet(path)
    else:
        raise SparkJobError(f"--engine spark writes parquet or csv, not {file_format}")


def worker_error(exc: Exception) -> str:
    """The line of a Python worker's failure that says what failed (the row, for a refused row)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "RowError: " in line:
            return line.split("RowError: ", 1)[1]
    return lines[-1] if lines else type(exc).__name__


def _format_of(path: str) -> str:
    """csv for a .csv path, else parquet (Spark's datasets are often directories without a suffix)."""
    return "csv" if Path(path).suffix.lower() == ".csv" else "parquet"
