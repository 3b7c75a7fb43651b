"""Payload capture: a sample of scored requests, with their predictions, written to files for
offline analysis, replay and retraining (what KServe's payload logger and Databricks' inference
tables give their users).

The request thread only draws a random number; a sampled request puts references to its inputs
and predictions (never changed after the event) on a bounded queue. One writer thread per worker
process serialises and writes them, so a slow or full disk never slows or fails a request: what
cannot be queued or written is dropped and counted (``scoring_server_capture_dropped_total``).

Files are ``capture_dir/<model>/<YYYY-MM-DD>/<YYYYmmddTHHMMSS>-<pid>-<seq>.<jsonl|parquet>``
(UTC): each process writes only files named with its own pid. JSON Lines files hold one request
per line and rotate past ``capture_max_file_mb`` and every hour; a Parquet file holds one row per
scored row and is written whole (at most a minute of captures, or ``capture_max_file_mb`` of
them), so that every file on disk is complete.
"""
from __future__ import annotations

import atexit
import itertools
import logging
import os
import queue
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from random import random
from time import monotonic, time
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
from flask import Flask, g, has_request_context
from prometheus_client import Counter

from flavors.json_values import json_default

from ..config import ConfigError, ServerConfig
from ..decoding.json_formats import DATAFRAME_SPLIT, INPUTS
from ..decoding.request import LLM_FORMAT
from ..encoding import encode_predictions
from ..errors import ScoringError
from .events import Event, ScoringEvent
from .multiprocess import server_directory
from .request_ids import current_request_id

_logger = logging.getLogger(__name__)

#: Captures waiting for the writer, per process; past it a capture is dropped (``queue_full``).
QUEUE_SIZE = 256
#: A Parquet file is written at the latest this long after its first capture was buffered.
PARQUET_FLUSH_SECONDS = 60.0
#: Dropped captures are logged at most this often (seconds).
DROP_LOG_INTERVAL = 60.0
#: Why a capture was dropped (the ``reason`` label).
QUEUE_FULL, WRITE_ERROR, UNENCODABLE = "queue_full", "write_error", "unencodable"
#: Columns a Parquet row has besides the inputs and predictions.
META_COLUMNS = ("time", "request_id", "model", "version")
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class Capture(NamedTuple):
    """One sampled request, as the request thread hands it over (nothing serialised yet).
    ``columns`` are the model's input names when ``inputs`` may be the numeric fast path's matrix."""

    time: float
    request_id: str | None
    model: str
    version: str | None
    format: str | None
    columns: tuple[str, ...] | None
    inputs: Any
    predictions: Any

    def frame_columns(self) -> tuple[str, ...] | None:
        """The column names of a fast-path matrix input; None for any other input."""
        data, columns = self.inputs, self.columns
        if columns is not None and isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == len(columns):
            return columns
        return None


def install_capture(app: Flask, config: ServerConfig) -> None:
    """Capture ``capture_fraction`` of the successful scoring requests under ``capture_dir``.

    A directory that cannot be made or written stops the server at start-up (ConfigError) rather
    than capturing nothing without a word.
    """
    if config.capture_dir is None:
        return
    outcomes = CaptureOutcomes()
    files = CaptureFiles(capture_directory(config.capture_dir), "." + config.capture_format)
    sink_type = ParquetSink if config.capture_format == "parquet" else JsonLinesSink
    max_bytes = int(config.capture_max_file_mb * 1024 * 1024)
    capture = PayloadCapture(config.capture_fraction, lambda: sink_type(files, max_bytes, outcomes), outcomes)
    app.extensions["observers"].add(capture)
    app.extensions["payload_capture"] = capture
    if server_directory() is None:  # in multiprocess mode the counters are read from the shared files
        app.extensions.setdefault("scrape_collectors", []).append(outcomes)


def capture_directory(path: str) -> Path:
    """``path`` made if missing and proven writable (a file is created and removed there)."""
    directory = Path(path).absolute()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ConfigError(f"capture_dir {path!r} cannot be written: {exc.strerror or exc}") from None
    return directory


class CaptureOutcomes:
    """What became of the captures: counted for Prometheus (summed over workers in multiprocess
    mode), drops logged at most once a minute. Thread-safe."""

    def __init__(self) -> None:
        self.captured = Counter("scoring_server_captured", "Scoring requests captured (written to a capture file).",
                                ["model"], registry=None)
        self.dropped = Counter("scoring_server_capture_dropped",
                               "Sampled scoring requests not captured, by reason (queue_full, write_error, "
                               "unencodable).", ["model", "reason"], registry=None)
        self._next_log = 0.0

    def written(self, model: str, count: int) -> None:
        self.captured.labels(model).inc(count)

    def drop(self, model: str, reason: str, count: int = 1, error: BaseException | None = None) -> None:
        self.dropped.labels(model, reason).inc(count)
        now = monotonic()
        if now >= self._next_log:
            self._next_log = now + DROP_LOG_INTERVAL
            _logger.warning("Dropped %d capture(s) of model %s: %s%s (logged at most once a minute)", count, model,
                            reason, f" ({error})" if error is not None else "")

    def collect(self) -> Any:
        """The counters' samples, for a scrape of an app without a multiprocess directory."""
        yield from self.captured.collect()
        yield from self.dropped.collect()


class PayloadCapture:
    """The observer: samples successful scoring requests and queues them for this process's writer.

    The writer (a thread) is started by the first sampled request of each process: threads do not
    survive gunicorn's fork, and the app is built before it. It is closed at exit, so that what it
    holds reaches the disk when a worker stops normally.
    """

    def __init__(self, fraction: float, make_sink: Callable[[], CaptureSink], outcomes: CaptureOutcomes) -> None:
        self._fraction = fraction
        self._make_sink = make_sink
        self._outcomes = outcomes
        self._writer: CaptureWriter | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if type(event) is not ScoringEvent or event.error_code is not None or random() >= self._fraction:
            return
        if not has_request_context():
            return  # the serving input check at start-up, not a client's request
        scorer = g.get("scorer")  # set by the scoring route
        fast_path = scorer.fast_path if scorer is not None else None
        columns = fast_path.columns if fast_path is not None and isinstance(event.inputs, np.ndarray) else None
        capture = Capture(time(), current_request_id(), event.model, event.version, event.format, columns,
                          event.inputs, event.predictions)
        if not self._process_writer().put(capture):
            self._outcomes.drop(event.model, QUEUE_FULL)

    def close(self) -> None:
        """Write out what this process captured and stop its writer (a later capture starts a new one)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None and writer.pid == os.getpid():
            writer.close()

    def _process_writer(self) -> CaptureWriter:
        writer = self._writer
        if writer is None or writer.pid != os.getpid():
            with self._lock:
                writer = self._writer
                if writer is None or writer.pid != os.getpid():
                    writer = self._writer = CaptureWriter(self._make_sink(), QUEUE_SIZE)
                    atexit.register(writer.close)
        return writer


_STOP = object()


class CaptureWriter:
    """One process's writer thread: takes captures off the queue and hands them to its sink."""

    def __init__(self, sink: CaptureSink, queue_size: int) -> None:
        self.pid = os.getpid()
        self._sink = sink
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="payload-capture", daemon=True)
        self._thread.start()

    def put(self, capture: Capture) -> bool:
        """Queue ``capture`` without waiting; False when the queue is full."""
        try:
            self._queue.put_nowait(capture)
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and buffered, close the files, and end the thread (within ``timeout``)."""
        if self._closed or self.pid != os.getpid():
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            _logger.warning("The capture writer did not stop within %g s: queued captures are lost", timeout)
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self._sink.seconds_until_due())]
            except queue.Empty:
                batch = []
            while len(batch) < self._queue.maxsize:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in batch)
            try:
                self._sink.write([capture for capture in batch if capture is not _STOP])
                self._sink.flush(everything=stopping)
            except Exception:  # a bug here must not end the thread: later captures still get written
                _logger.exception("The capture writer failed")
            if stopping:
                return


class CaptureFiles:
    """Names the capture files of one server: ``root/<model>/<YYYY-MM-DD>/<time>-<pid>-<seq><suffix>``.
    The pid and a sequence number of this process make a name no other process uses."""

    def __init__(self, root: Path, suffix: str) -> None:
        self.root = root
        self.suffix = suffix
        self._sequence = itertools.count()

    def new_path(self, model: str) -> Path:
        """A new file's path in today's folder of ``model`` (folders made here; may raise OSError)."""
        now = datetime.now(timezone.utc)
        folder = self.root / _path_safe(model) / f"{now:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{now:%Y%m%dT%H%M%S}-{os.getpid()}-{next(self._sequence):06d}{self.suffix}"


def _path_safe(name: str) -> str:
    """A model name as one path component (served names follow the model-name rule already)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return safe if safe and not safe.startswith(".") else "_" + safe


def _open_new(path: Path) -> Any:
    """A new file, unbuffered: what was written is on disk, and a failed write can be undone."""
    return open(path, "xb", buffering=0)


class CaptureSink(ABC):
    """Where a writer's captures go; a sink counts what it writes and drops through ``outcomes``."""

    def __init__(self, files: CaptureFiles, max_bytes: int, outcomes: CaptureOutcomes) -> None:
        self.files = files
        self.max_bytes = max_bytes
        self.outcomes = outcomes

    @abstractmethod
    def write(self, captures: list[Capture]) -> None:
        """Write ``captures`` (or buffer them); OSErrors are counted as drops, never raised."""

    def seconds_until_due(self) -> float | None:
        """How long the writer may wait for captures before :meth:`flush` has work; None: forever."""
        return None

    def flush(self, everything: bool) -> None:
        """Write out what is due (``everything``: all of it, and close the files: the writer stops)."""


@dataclass
class _JsonLinesFile:
    file: Any
    hour: int
    size: int = 0

    def append(self, data: bytes) -> None:
        """Append ``data`` whole, or (a full disk) cut what was written of it and raise OSError."""
        try:
            view = memoryview(data)
            while view:
                view = view[self.file.write(view):]
        except OSError:
            try:
                self.file.truncate(self.size)
            except OSError:
                pass  # the file is given up: its last line may be cut
            raise
        self.size += len(data)


class JsonLinesSink(CaptureSink):
    """One JSON object per request, appended to the model's current file; a new file past
    ``max_bytes`` and every hour."""

    def __init__(self, files: CaptureFiles, max_bytes: int, outcomes: CaptureOutcomes) -> None:
        super().__init__(files, max_bytes, outcomes)
        self._files: dict[str, _JsonLinesFile] = {}

    def write(self, captures: list[Capture]) -> None:
        lines: dict[str, list[bytes]] = {}
        for capture in captures:
            try:
                lines.setdefault(capture.model, []).append(capture_line(capture))
            except (ScoringError, TypeError) as error:  # orjson's encoding errors are TypeErrors
                self.outcomes.drop(capture.model, UNENCODABLE, error=error)
        for model, model_lines in lines.items():
            try:
                self._current_file(model).append(b"".join(model_lines))
            except OSError as error:
                self._close(model)
                self.outcomes.drop(model, WRITE_ERROR, len(model_lines), error)
            else:
                self.outcomes.written(model, len(model_lines))

    def flush(self, everything: bool) -> None:
        if everything:
            for model in list(self._files):
                self._close(model)

    def _current_file(self, model: str) -> _JsonLinesFile:
        hour = int(time() // 3600)
        current = self._files.get(model)
        if current is None or current.size >= self.max_bytes or current.hour != hour:
            self._close(model)
            current = self._files[model] = _JsonLinesFile(_open_new(self.files.new_path(model)), hour)
        return current

    def _close(self, model: str) -> None:
        current = self._files.pop(model, None)
        if current is not None:
            try:
                current.file.close()
            except OSError:
                pass  # unbuffered: nothing is left to write


def capture_line(capture: Capture) -> bytes:
    """A capture as one JSON line. ``inputs`` is a request body that scores the same rows again
    (a missing value is ``null``, as it came); ``predictions`` are encoded as the server answered
    them (``NaN``, numpy types, dates)."""
    record = {
        "time": datetime.fromtimestamp(capture.time, timezone.utc).isoformat(),
        "request_id": capture.request_id,
        "model": capture.model,
        "version": capture.version,
        "inputs": orjson.Fragment(orjson.dumps(replay_body(capture), default=json_default, option=_ORJSON_OPTIONS)),
        "predictions": orjson.Fragment(encode_predictions(capture.predictions, wrap=False)),
    }
    return orjson.dumps(record) + b"\n"


def replay_body(capture: Capture) -> Any:
    """The captured input as a JSON request body: ``dataframe_split`` for tables (the fast path's
    matrix included), ``inputs`` for tensors, an LLM-style payload as it came."""
    data = capture.inputs
    if isinstance(data, pd.DataFrame):
        return {DATAFRAME_SPLIT: {"columns": list(data.columns),
                                  "data": data.astype(object).where(data.notna(), None).to_numpy()}}
    columns = capture.frame_columns()
    if columns is not None:
        return {DATAFRAME_SPLIT: {"columns": list(columns), "data": data}}
    if capture.format == LLM_FORMAT:
        return data
    return {INPUTS: data}


@dataclass
class _ParquetBuffer:
    started: float
    tables: list[Any] = field(default_factory=list)
    size: int = 0


class ParquetSink(CaptureSink):
    """One row per scored row, buffered per model and written as a whole file when the buffer
    reaches ``max_bytes`` (in memory) or is a minute old: a file on disk is always complete."""

    def __init__(self, files: CaptureFiles, max_bytes: int, outcomes: CaptureOutcomes) -> None:
        super().__init__(files, max_bytes, outcomes)
        self._buffers: dict[str, _ParquetBuffer] = {}

    def write(self, captures: list[Capture]) -> None:
        import pyarrow as pa

        for capture in captures:
            try:
                table = capture_table(capture)
            except (pa.ArrowException, ScoringError, TypeError, ValueError) as error:
                self.outcomes.drop(capture.model, UNENCODABLE, error=error)
                continue
            buffer = self._buffers.setdefault(capture.model, _ParquetBuffer(monotonic()))
            buffer.tables.append(table)
            buffer.size += table.nbytes
            if buffer.size >= self.max_bytes:
                self._write_file(capture.model)

    def seconds_until_due(self) -> float | None:
        if not self._buffers:
            return None
        oldest = min(buffer.started for buffer in self._buffers.values())
        return max(0.0, oldest + PARQUET_FLUSH_SECONDS - monotonic())

    def flush(self, everything: bool) -> None:
        now = monotonic()
        for model, buffer in list(self._buffers.items()):
            if everything or now >= buffer.started + PARQUET_FLUSH_SECONDS:
                self._write_file(model)

    def _write_file(self, model: str) -> None:
        """The model's buffer as Parquet: one file per distinct table schema (columns and types
        can differ between requests)."""
        import pyarrow as pa

        by_schema: dict[Any, list] = {}
        for table in self._buffers.pop(model).tables:
            by_schema.setdefault(table.schema, []).append(table)
        for tables in by_schema.values():
            try:
                _write_parquet(pa.concat_tables(tables), self.files.new_path(model))
            except OSError as error:
                self.outcomes.drop(model, WRITE_ERROR, len(tables), error)
            else:
                self.outcomes.written(model, len(tables))


def _write_parquet(table: Any, path: Path) -> None:
    """Write ``table`` under a hidden name, then give it its name: readers never see half a file."""
    import pyarrow.parquet as pq

    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with _open_new(temporary) as file:
            pq.write_table(table, file)
        os.rename(temporary, path)
    except OSError:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def capture_table(capture: Capture) -> Any:
    """A capture as an Arrow table of one row per scored row: time, request_id, model, version,
    the input columns (``input.NAME`` if NAME is taken), and ``prediction`` (or
    ``prediction.NAME`` for named outputs). ValueError when the predictions are not one per row."""
    import pyarrow as pa

    predictions = {name: _arrow_column(values) for name, values in _prediction_columns(capture).items()}
    inputs = {name: _arrow_column(values) for name, values in _input_columns(capture).items()}
    rows = len(next(iter(inputs.values()))) if inputs else 1
    if any(len(column) != rows for column in (*inputs.values(), *predictions.values())):
        raise ValueError("the inputs and predictions do not have one row each per scored row")
    taken = {*META_COLUMNS, *predictions}
    meta = {
        "time": pa.array([int(capture.time * 1e6)] * rows, pa.timestamp("us", tz="UTC")),
        "request_id": pa.array([capture.request_id] * rows, pa.string()),
        "model": pa.array([capture.model] * rows, pa.string()),
        "version": pa.array([capture.version] * rows, pa.string()),
    }
    return pa.table({**meta, **{f"input.{name}" if name in taken else name: column for name, column in inputs.items()},
                     **predictions})


def _input_columns(capture: Capture) -> dict[str, Any]:
    data = capture.inputs
    if isinstance(data, pd.DataFrame):
        return {str(name): data.iloc[:, i] for i, name in enumerate(data.columns)}
    columns = capture.frame_columns()
    if columns is not None:
        return dict(zip(columns, data.T))
    if capture.format == LLM_FORMAT and isinstance(data, dict):
        return {str(key): [value] for key, value in data.items()}
    if isinstance(data, dict):
        return {str(key): value for key, value in data.items()}
    return {INPUTS: data}


def _prediction_columns(capture: Capture) -> dict[str, Any]:
    raw = capture.predictions
    if isinstance(raw, pd.DataFrame):
        return {f"prediction.{name}": raw.iloc[:, i] for i, name in enumerate(raw.columns)}
    if isinstance(raw, dict) and capture.format != LLM_FORMAT:
        return {f"prediction.{key}": value for key, value in raw.items()}
    if isinstance(raw, (np.ndarray, pd.Series, list)) and capture.format != LLM_FORMAT:
        return {"prediction": raw}
    return {"prediction": [raw]}


def _arrow_column(values: Any) -> Any:
    """``values`` as an Arrow array; values Arrow cannot type (mixed kinds) as JSON text."""
    import pyarrow as pa

    if isinstance(values, np.ndarray) and values.ndim > 1:
        values = values.tolist()
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array([encode_predictions(value, wrap=False).decode() for value in values])
