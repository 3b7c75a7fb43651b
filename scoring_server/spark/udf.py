"""``spark_udf``: a model as an iterator-of-pandas UDF whose answers equal the server's."""
from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from flavors import read_mlmodel, resolve_model_uri

from .types import result_type_of
from .worker import score_batches


def spark_udf(spark: SparkSession, model_uri: str, result_type: T.DataType | str | None = None,
              params: dict | None = None, registry_root: str | None = None) -> ModelUdf:
    """A function of columns returning the model's predictions, as ``mlflow.pyfunc.spark_udf`` does.

    Call it with the input columns, or with none for the signature's input columns. ``models:/``
    URIs are resolved here, on the driver; the model directory is shipped to the executors with
    the job, so they need neither the registry nor the driver's file system. ``result_type``
    (a Spark type or DDL string) defaults to what the output signature says; ``params`` are the
    inference parameters of every row, enforced like a request's.
    """
    path = local_model_path(model_uri, registry_root)
    signature = read_mlmodel(path).signature
    returned = _spark_type(result_type) if result_type is not None else \
        result_type_of(signature.outputs if signature else None)
    shipped = ship_model(spark, path)
    scored = pandas_udf(_iterator_udf(partial(score_batches, shipped, params, returned)), returned)
    return ModelUdf(scored, signature.inputs.input_names() if signature and signature.inputs else [], model_uri)


class ModelUdf:
    """The model's UDF over columns: ``udf(*columns)``, or ``udf()`` for the signature's input columns."""

    def __init__(self, scored: Callable[[Column], Column], input_names: list[str], model_uri: str) -> None:
        self.scored = scored
        self.input_names = input_names
        self.model_uri = model_uri

    def __call__(self, *columns: str | Column) -> Column:
        if not columns and not self.input_names:
            raise ValueError(f"{self.model_uri} has no named inputs in its signature: name the input columns")
        return self.scored(F.struct(*(columns or self.input_names)))


def local_model_path(model_uri: str, registry_root: str | None = None) -> Path:
    """The model's directory on the driver: a ``models:/`` reference resolved in the registry."""
    if model_uri.startswith("models:"):
        from ..registry import ModelRegistry

        return Path(ModelRegistry(registry_root).resolve_uri(model_uri).path)
    return Path(resolve_model_uri(model_uri))


def ship_model(spark: SparkSession, path: Path) -> str:
    """Send the model directory to every executor as an archive; the name ``SparkFiles.get`` finds
    it by (unpacked) there. Unique per call, so two models of the same folder name never collide."""
    staging = Path(tempfile.mkdtemp(prefix="scoring-server-spark-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)  # the driver serves it to executors until it exits
    archive = shutil.make_archive(str(staging / f"model-{uuid.uuid4().hex}"), "zip", root_dir=path)
    spark.sparkContext.addArchive(archive)
    return Path(archive).name


def _spark_type(result_type: T.DataType | str) -> T.DataType:
    if isinstance(result_type, T.DataType):
        return result_type
    from pyspark.sql.types import _parse_datatype_string

    return _parse_datatype_string(result_type)


def _iterator_udf(score: Callable[[Iterator[pd.DataFrame]], Iterator[Any]]):
    """``score`` with the type hints that make pandas_udf an iterator UDF over a struct column."""
    def udf(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        return score(batches)

    return udf
