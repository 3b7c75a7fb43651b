"""Adaptive batching: concurrent requests of a worker merged into one ``predict`` call.

Two ways requests get to wait together. On a worker's event loop (one thread, the default), each
request runs in a greenlet that parks at ``predict``; the loop predicts everything parked once it
has decoded all it read (:mod:`scoring_server.workers.greenlets`), so a batch is what arrived
during the previous one, with no waiting and no thread. With ``threads > 1``, request threads
hand their validated input to a batching thread and wait; it takes what is queued, keeps
collecting while other requests are still being decoded (at most ``max_batch_time_ms``), and
hands each request its own rows. Either way a batch holds at most ``max_batch_size`` rows and
merges only inputs that share the same params and kind; a lone request is predicted at once. If
a merged call fails, or its result cannot be split by rows, every request of that batch is
predicted on its own, so one bad request never fails the others.

Only for models whose predictions are row-independent (see ``LoadedModel.row_independent``).
A batcher belongs to one scorer in one process: the scorer makes it after the fork, on its first
request, and closes it when its model is unloaded or replaced.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import TEMPORARILY_UNAVAILABLE, ScoringError
from .workers.context import batch_loop, deadline_exceeded

_logger = logging.getLogger(__name__)

Predict = Callable[[Any, "dict | None"], Any]


@dataclass
class _Pending:
    """One request waiting for its predictions; a thread waits on ``done`` (held until finished),
    a greenlet is resumed by the loop."""

    data: Any
    params: dict | None
    rows: int
    done: Any = None
    result: Any = None
    error: BaseException | None = None
    finished: bool = False

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True
        if self.done is not None:
            self.done.release()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class AdaptiveBatcher:
    """Merges concurrent ``predict`` calls of one model in one worker process.

    Its batching thread starts with the first request and ends after ``idle_seconds`` without
    one, so an idle or unloaded model holds no thread. After :meth:`close` (its model was
    unloaded or replaced) requests still in flight are predicted one by one and the thread ends
    once the queue is empty: nothing keeps the model alive. A request waits at most
    ``wait_timeout`` seconds for its batch, then gets a 503. ``on_batch(rows, requests)`` hears
    about every batch collected (a lone request is a batch of one). Requests in greenlets of a
    worker's loop are parked there instead; with ``threads`` False no thread is expected, and a
    request outside such a greenlet is predicted at once.
    """

    def __init__(self, predict: Predict, max_batch_size: int, max_batch_time_ms: float,
                 wait_timeout: float | None = None, idle_seconds: float = 1.0,
                 on_batch: Callable[[int, int], None] | None = None, threads: bool = True) -> None:
        self._predict = predict
        self.threads = threads
        self._on_batch = on_batch
        self.max_batch_size = max_batch_size
        self.max_batch_time = max_batch_time_ms / 1000
        self.wait_timeout = wait_timeout
        self.idle_seconds = idle_seconds
        self._condition = threading.Condition()
        self._queue: list[_Pending] = []
        self._arriving = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._predicting_since: float | None = None

    def arriving(self) -> None:
        """A request started decoding: worth waiting for if a batch is being collected."""
        if not self.threads:
            return
        with self._condition:
            self._arriving += 1

    def predict(self, data: Any, params: dict | None, deadline: float | None = None) -> Any:
        """Predictions for ``data``, possibly computed together with other requests' rows; waited
        for until ``deadline`` (``time.monotonic()``) at most, else a 504."""
        rows = _row_count(data)
        loop = batch_loop()
        if rows is not None and loop is not None:  # a greenlet of the worker's loop: with the others it read
            pending = _Pending(data, params, rows)
            loop.park(self, pending)
            return pending.outcome()
        if rows is None or self._closed or not self.threads:
            self.abandon()
            return self._predict(data, params)
        pending = _Pending(data, params, rows, _held_lock())
        with self._condition:
            self._arriving = max(self._arriving - 1, 0)
            self._queue.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="adaptive-batcher", daemon=True)
                self._thread.start()
            self._condition.notify_all()
        timeout = self.wait_timeout
        if deadline is not None:
            timeout = max(deadline - time.monotonic(), 0.0) if timeout is None else \
                min(timeout, max(deadline - time.monotonic(), 0.0))
        if not pending.done.acquire(timeout=-1 if timeout is None else timeout):
            self._check_hung()
            raise deadline_exceeded(self.wait_timeout) if deadline is not None else \
                ScoringError(f"The prediction did not finish within {self.wait_timeout:g} s.",
                             TEMPORARILY_UNAVAILABLE, status=503)
        return pending.outcome()

    def predict_pending(self, waiting: list[_Pending]) -> None:
        """Predict requests parked by the worker's loop (in arrival order), in batches."""
        while waiting:
            batch = _take_batch(waiting, self.max_batch_size)
            for group in _groups(batch) if len(batch) > 1 else (batch,):
                self._predict_group(group)

    def _check_hung(self) -> None:
        """A request waited its whole time while the batching thread was inside ``predict``: a
        prediction that long holds every request of this model behind it. The batcher closes:
        later requests predict on their own threads, where the worker's deadline watch counts them
        and replaces the worker when all its threads are stuck (the batching thread cannot be stopped)."""
        since = self._predicting_since
        if since is not None and not self._closed:
            _logger.error("A prediction has been running for %.1f s, past a request's deadline: batching stops "
                          "in this worker", time.monotonic() - since)
            self.close()

    def abandon(self) -> None:
        """A request that announced itself will not join a batch (it failed, or cannot be merged)."""
        if not self.threads:
            return
        with self._condition:
            self._arriving = max(self._arriving - 1, 0)
            self._condition.notify_all()

    def close(self) -> None:
        """No more batches: the queue is finished and the thread ends (the model was unloaded)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def running(self) -> bool:
        """Whether the batching thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        while (batch := self._collect()):
            for group in _groups(batch):
                self._predicting_since = time.monotonic()
                try:
                    self._predict_group(group)
                finally:
                    self._predicting_since = None

    def _collect(self) -> list[_Pending]:
        """The next batch; empty when the thread should end (closed, or idle too long)."""
        with self._condition:
            idle_until = time.monotonic() + self.idle_seconds
            while not self._queue:
                remaining = idle_until - time.monotonic()
                if self._closed or remaining <= 0:
                    self._thread = None
                    return []
                self._condition.wait(remaining)
            deadline = time.monotonic() + self.max_batch_time
            while (not self._closed and self._arriving > 0 and sum(p.rows for p in self._queue) < self.max_batch_size
                   and (remaining := deadline - time.monotonic()) > 0):
                self._condition.wait(remaining)
            return _take_batch(self._queue, self.max_batch_size)

    def _predict_group(self, group: list[_Pending]) -> None:
        if self._on_batch is not None:
            self._on_batch(sum(p.rows for p in group), len(group))
        if len(group) > 1:
            try:
                result = self._predict(_merge([p.data for p in group]), group[0].params)
                parts = _split(result, [p.rows for p in group])
            except Exception:  # noqa: BLE001 - fall back to one call per request
                parts = None
            if parts is not None:
                _logger.debug("Predicted %d requests (%d rows) in one call", len(group), sum(p.rows for p in group))
                for pending, part in zip(group, parts):
                    pending.finish(part)
                return
        for pending in group:
            try:
                pending.finish(self._predict(pending.data, pending.params))
            except BaseException as exc:  # handed to the request's own thread
                pending.finish(error=exc)


def _take_batch(queue: list[_Pending], max_rows: int) -> list[_Pending]:
    """The next batch from the head of ``queue`` (removed from it): at most ``max_rows`` rows, or
    one request larger than that."""
    count, rows = 0, 0
    while count < len(queue) and (not count or rows + queue[count].rows <= max_rows):
        rows += queue[count].rows
        count += 1
    batch = queue[:count]
    del queue[:count]
    return batch


def _held_lock() -> Any:
    """A lock already held: a waiting thread blocks on it until :meth:`_Pending.finish` releases it."""
    lock = threading.Lock()
    lock.acquire()
    return lock


def _row_count(data: Any) -> int | None:
    """Rows of a batchable input (a 2-D array or a DataFrame); None for anything else."""
    if isinstance(data, np.ndarray) and data.ndim == 2 or isinstance(data, pd.DataFrame):
        return len(data)
    return None


def _groups(batch: list[_Pending]) -> list[list[_Pending]]:
    """Requests that may share one call: same params, same input kind and columns."""
    groups: dict[tuple, list[_Pending]] = {}
    for pending in batch:
        groups.setdefault(_group_key(pending), []).append(pending)
    return list(groups.values())


def _group_key(pending: _Pending) -> tuple:
    params = json.dumps(pending.params, sort_keys=True, default=str)
    data = pending.data
    if isinstance(data, pd.DataFrame):
        return params, "frame", tuple(data.columns), tuple(map(str, data.dtypes))
    return params, "array", data.dtype.str, data.shape[1:]


def _merge(parts: list[Any]) -> Any:
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)


def _split(result: Any, sizes: list[int]) -> list[Any] | None:
    """Each request's rows of a merged result; None when the result does not have one row per input row."""
    if not isinstance(result, (np.ndarray, pd.DataFrame, pd.Series, list)) or len(result) != sum(sizes):
        return None
    bounds = np.cumsum([0, *sizes])
    if isinstance(result, (pd.DataFrame, pd.Series)):
        return [result.iloc[start:end].reset_index(drop=True) for start, end in zip(bounds, bounds[1:])]
    return [result[start:end] for start, end in zip(bounds, bounds[1:])]
