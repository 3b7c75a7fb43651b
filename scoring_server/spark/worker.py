"""The executor side of the UDF: one model per Python worker, batches scored as the server scores
request bodies (signature enforcement, fast path, prediction), errors naming their row.

Kept free of closures over driver state: a Python worker imports this module once and keeps its
models across tasks (``spark.python.worker.reuse``, on by default).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark import SparkFiles, TaskContext
from pyspark.sql import types as T

from ..decoding import DecodedRequest
from ..errors import ScoringError
from ..pipeline import Scorer

_scorers: dict[str, Scorer] = {}
_lock = threading.Lock()


class RowError(ValueError):
    """A row the model refused (its signature or its own code), named by partition and position."""


def scorer_for(shipped: str) -> Scorer:
    """The scorer of the model shipped as the archive ``shipped``, loaded at most once per worker."""
    scorer = _scorers.get(shipped)
    if scorer is None:
        from flavors import load_model

        with _lock:
            scorer = _scorers.get(shipped)
            if scorer is None:
                scorer = _scorers[shipped] = Scorer(load_model(SparkFiles.get(shipped)))
    return scorer


def score_batches(shipped: str, params: dict | None, result_type: T.DataType,
                  batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series | pd.DataFrame]:
    """The predictions of each batch of rows, shaped for ``result_type``."""
    scorer = scorer_for(shipped)
    done = 0
    for batch in batches:
        try:
            raw = _score(scorer, batch, params)
        except ScoringError as error:
            raise _row_error(scorer, batch, params, done, error) from None
        yield as_spark_column(raw, result_type, len(batch))
        done += len(batch)


def _score(scorer: Scorer, data: pd.DataFrame, params: dict | None) -> Any:
    """What the server does after decoding a body into ``data``: validate, then predict."""
    request = DecodedRequest(data, params)
    scorer.validate(request)
    return scorer.predict_now(request.data, request.params)


def _row_error(scorer: Scorer, batch: pd.DataFrame, params: dict | None, before: int,
               error: ScoringError) -> RowError:
    """The error of the batch's first row that fails on its own (the whole batch's if none does),
    counted from 1 within the partition (a single-file CSV's partition 0: its data rows)."""
    context = TaskContext.get()
    partition = context.partitionId() if context else 0
    for position in range(len(batch)):
        row = batch.iloc[position:position + 1].reset_index(drop=True)
        try:
            _score(scorer, row, params)
        except ScoringError as row_failure:
            values = ", ".join(f"{name}={_plain(value)!r}" for name, value in row.iloc[0].items())
            return RowError(f"partition {partition}, row {before + position + 1} ({values}): "
                            f"{row_failure.one_line()}")
    return RowError(f"partition {partition}, rows {before + 1}-{before + len(batch)}: {error.one_line()}")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def as_spark_column(raw: Any, result_type: T.DataType, rows: int) -> pd.Series | pd.DataFrame:
    """Predictions as the pandas value Arrow turns into ``result_type``: a frame for a struct, a
    series otherwise (a list per row for an array)."""
    if isinstance(result_type, T.StructType):
        return _as_frame(raw, [field.name for field in result_type.fields])
    if isinstance(raw, pd.DataFrame):
        raw = raw.iloc[:, 0] if raw.shape[1] == 1 and not isinstance(result_type, T.ArrayType) else list(raw.to_numpy())
    elif isinstance(raw, np.ndarray) and raw.ndim > 1:
        raw = list(raw) if isinstance(result_type, T.ArrayType) else raw.reshape(rows, -1)[:, 0]
    series = raw.reset_index(drop=True) if isinstance(raw, pd.Series) else pd.Series(raw)
    return _cast(series, result_type)


def _as_frame(raw: Any, names: list[str]) -> pd.DataFrame:
    if isinstance(raw, pd.DataFrame):
        return raw.reset_index(drop=True)[names]
    if isinstance(raw, dict):
        return pd.DataFrame({name: list(raw[name]) if np.ndim(raw[name]) > 1 else raw[name] for name in names})
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        return pd.DataFrame.from_records(raw, columns=names)
    return pd.DataFrame(np.asarray(raw).reshape(len(raw), -1), columns=names)


_NUMPY = {T.DoubleType: np.float64, T.FloatType: np.float32, T.LongType: np.int64, T.IntegerType: np.int32,
          T.BooleanType: np.bool_}


def _cast(series: pd.Series, result_type: T.DataType) -> pd.Series:
    """Numbers in the declared width (a class label as double for MLflow's default ``double``)."""
    dtype = _NUMPY.get(type(result_type))
    if dtype is not None and series.dtype != dtype:
        return series.astype(dtype)
    if isinstance(result_type, T.StringType) and series.dtype != object:
        return series.astype(str)
    return series
