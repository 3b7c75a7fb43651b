"""Drift while serving: the rows a server scores, binned like the model's training baseline
(:mod:`.baseline`) and compared with it over a rolling window, for every model and version.

A sampled share of successful requests (``drift_sample_fraction``) is counted. Each worker adds
its counts to a ring of time slices (the window ``drift_window_seconds`` in :data:`SLICES`
slices; each slice tagged with its absolute number, so a slice older than the window is ignored
and reused). Under a served ``scoring-server`` the rings are memory-mapped files, one per model
version and worker process, in ``server_directory()/drift/``, next to a self-describing sidecar
per model version (its name, version and baseline): any worker sums every worker's files, a dead
worker's counts included, for a model it never loaded itself. An app without a server directory
(in-process, tests) keeps its one ring in memory.

Over the window, per column: the population stability index (PSI) against the baseline's shares
and, for numeric columns, the Kolmogorov-Smirnov distance between the binned distributions. They
are exported at scrape time (:meth:`DriftMonitor.collect`) and summarised by :func:`drift_report`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from flask import Flask

from ..config import ServerConfig
from ..model_selection import served_scorers
from .baseline import NUMERIC, Baseline, Distribution, InputColumns, output_columns, read_baseline
from .events import ScoringEvent, ServedModelsEvent
from .multiprocess import server_directory

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

    from ..pipeline import Scorer

_logger = logging.getLogger(__name__)

#: The window is counted in this many slices: it slides by a twelfth of its length.
SLICES = 12
#: Shares below this count as this in PSI, so that an empty bin on either side stays finite.
EPSILON = 1e-4
OK, WARN, ALERT = "ok", "warn", "alert"
INSUFFICIENT_DATA = "insufficient_data"
_UNKNOWN = object()

Key = tuple[str, Optional[str]]  # (model, version)


class LocalCounts:
    """The counts of an app without a server directory: in this process's memory."""

    def __init__(self) -> None:
        self._descriptions: dict[str, dict] = {}
        self._rings: dict[str, np.ndarray] = {}

    def publish(self, key: str, description: dict) -> None:
        """Make the model version ``description`` describes (name, version, baseline) known as ``key``."""
        self._descriptions[key] = description

    def open(self, key: str, width: int) -> np.ndarray:
        """This process's ring for ``key``."""
        return self._rings.setdefault(key, _new_ring(np.zeros((SLICES, width), dtype=np.int64)))

    def descriptions(self) -> dict[str, dict]:
        return dict(self._descriptions)

    def rings(self, key: str) -> list[np.ndarray]:
        return [self._rings[key]] if key in self._rings else []


class SharedCounts:
    """The counts of a served app's workers: memory-mapped files in ``directory``, one ring per
    model version and process (``<key>.<pid>.counts``), and a sidecar per model version
    (``<key>.json``). Readers take the rings as they are: a slice being updated may be read
    half-counted, never half-reset (its number is cleared first)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(exist_ok=True)
        self._descriptions: dict[str, dict] = {}

    def publish(self, key: str, description: dict) -> None:
        sidecar = self.directory / f"{key}.json"
        if not sidecar.exists():
            partial = self.directory / f".{key}.{os.getpid()}.json"
            partial.write_text(json.dumps(description), encoding="utf-8")
            os.replace(partial, sidecar)

    def open(self, key: str, width: int) -> np.ndarray:
        ring = np.memmap(self.directory / f"{key}.{os.getpid()}.counts", dtype=np.int64, mode="w+",
                         shape=(SLICES, width))
        return _new_ring(ring.view(np.ndarray))  # the same shared pages, without memmap's per-operation cost

    def descriptions(self) -> dict[str, dict]:
        """Every model version with a baseline any worker has served, read once per version."""
        for sidecar in self.directory.glob("*.json"):
            key = sidecar.stem
            if key not in self._descriptions:
                try:
                    self._descriptions[key] = json.loads(sidecar.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    _logger.warning("Ignoring drift counts %s: %s", sidecar, exc)
        return dict(self._descriptions)

    def rings(self, key: str) -> list[np.ndarray]:
        """Every process's ring of ``key``, dead workers' included."""
        rings = []
        for path in self.directory.glob(f"{key}.*.counts"):
            counts = np.fromfile(path, dtype=np.int64)
            if counts.size and counts.size % SLICES == 0:
                rings.append(counts.reshape(SLICES, -1))
        return rings


Counts = LocalCounts | SharedCounts


def _new_ring(ring: np.ndarray) -> np.ndarray:
    """A ring whose slices are all unused (slice number -1)."""
    ring[:, 0] = -1
    return ring


@dataclass(frozen=True)
class Window:
    """The clock and the window's geometry: slice numbers are absolute (seconds since the epoch
    divided by the slice length), so every process agrees on them."""

    seconds: float
    clock: Callable[[], float] = time.time

    def current(self) -> int:
        return int(self.clock() // (self.seconds / SLICES))

    def live(self, ring: np.ndarray, current: int) -> np.ndarray:
        """Which slices of ``ring`` are in the window ending with slice ``current``."""
        numbers = ring[:, 0]
        return (numbers > current - SLICES) & (numbers <= current)


def _key(description: dict) -> str:
    """A file name for a model version and its baseline (a new baseline counts apart from the old one)."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def _columns(baseline: Baseline) -> tuple[Distribution, ...]:
    """The baseline's distributions in the order their bins are counted: inputs, then outputs."""
    return baseline.features + baseline.predictions


class Tracker:
    """Counts one model version's scored rows into this process's ring, in the baseline's bins."""

    def __init__(self, key: str, baseline: Baseline, inputs: InputColumns, counts: Counts, window: Window) -> None:
        self.inputs = inputs
        self.window = window
        self._columns = _columns(baseline)
        self._outputs = baseline.predictions
        sizes = [column.bins.size for column in self._columns]
        self._offsets = np.cumsum([0, *sizes[:-1]])
        self._bins = sum(sizes)
        self._open = lambda: counts.open(key, 2 + self._bins)
        self._pid = 0
        self._ring: np.ndarray | None = None
        self._lock = threading.Lock()

    def record(self, inputs: Any, predictions: Any) -> None:
        """Count the rows of one request (input it cannot read, such as tensors, is skipped)."""
        values = self.inputs.values(inputs)
        if values is None:
            return
        rows = len(inputs)
        outputs = (output_columns(predictions) or {}) if self._outputs else {}
        values += [outputs.get(output.name) for output in self._outputs]
        codes = [(column.bins.codes(value) if value is not None else np.full(rows, column.bins.size - 1)) + offset
                 for column, value, offset in zip(self._columns, values, self._offsets, strict=True)]
        counts = np.bincount(np.concatenate(codes), minlength=self._bins)
        slice_number = self.window.current()
        with self._lock:
            row = self._process_ring()[slice_number % SLICES]
            if row[0] != slice_number:  # a slice from a window ago: start it again
                row[0] = -1
                row[1:] = 0
                row[0] = slice_number
            row[1] += rows
            row[2:] += counts

    def _process_ring(self) -> np.ndarray:
        """This process's ring, opened again after a fork (a worker never writes into its parent's)."""
        if self._pid != os.getpid():
            self._ring, self._pid = self._open(), os.getpid()
        return self._ring


@dataclass(frozen=True)
class ColumnDrift:
    """One column over the window: PSI and (numeric columns) KS distance, None until the window
    has enough rows."""

    name: str
    kind: str
    psi: float | None
    ks: float | None
    status: str


@dataclass(frozen=True)
class VersionDrift:
    """One model version over the window, across all workers."""

    model: str
    version: str | None
    baseline: Baseline
    rows: int
    features: tuple[ColumnDrift, ...]
    predictions: tuple[ColumnDrift, ...]
    status: str


class DriftMonitor:
    """The drift part of one app: the observer counting sampled requests, the scrape-time
    collector of ``/metrics``, and the report of ``/monitoring``."""

    def __init__(self, app: Flask, config: ServerConfig, counts: Counts,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.counts = counts
        self.window = Window(config.drift_window_seconds, clock)
        self.fraction = config.drift_sample_fraction
        self.min_rows = config.drift_min_rows
        self.warn_psi, self.alert_psi = config.drift_warn_psi, config.drift_alert_psi
        self._trackers: dict[Key, Tracker | None] = {}
        self._baselines: dict[str, Baseline | None] = {}
        self._lock = threading.Lock()

    def observe(self, event: Any) -> None:
        """The observer: counts a sampled successful request; reads the baselines of models a
        worker starts serving (so that the first sampled request does not)."""
        kind = type(event)
        if kind is ScoringEvent:
            if event.error_code is None and random.random() < self.fraction:
                tracker = self._trackers.get((event.model, event.version), _UNKNOWN)
                if tracker is _UNKNOWN:
                    tracker = self._tracker((event.model, event.version))
                if tracker is not None:
                    tracker.record(event.inputs, event.predictions)
        elif kind is ServedModelsEvent:
            for served in event.models:
                if (served.model, served.version) not in self._trackers:
                    self._tracker((served.model, served.version))

    def versions(self) -> list[VersionDrift]:
        """Every model version with a baseline that a worker has served, over the window now."""
        current = self.window.current()
        drifts = []
        for key, description in self.counts.descriptions().items():
            baseline = self._baseline(key, description)
            if baseline is None:
                continue
            drifts.append(self._drift(description["model"], description["version"], baseline,
                                      self._totals(key, baseline, current)))
        return sorted(drifts, key=lambda drift: (drift.model, drift.version or ""))

    def report(self) -> dict[str, list[dict]]:
        """The ``/monitoring`` drift of every model with a baseline, by model name (JSON-ready)."""
        report: dict[str, list[dict]] = defaultdict(list)
        for drift in self.versions():
            report[drift.model].append({
                "version": drift.version,
                "baseline": True,
                "baseline_rows": drift.baseline.rows,
                "baseline_created": drift.baseline.created,
                "window_seconds": self.window.seconds,
                "rows": drift.rows,
                "min_rows": self.min_rows,
                "status": drift.status,
                "features": [_column_json(column, "feature") for column in drift.features],
                "predictions": [_column_json(column, "output") for column in drift.predictions],
            })
        return dict(report)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The drift gauges, computed when ``/metrics`` is scraped (a prometheus_client collector)."""
        from prometheus_client.core import GaugeMetricFamily

        labels = ["model", "version"]
        psi = GaugeMetricFamily("scoring_server_feature_drift", "Population stability index of an input "
                                "column over the drift window against the training baseline.",
                                labels=[*labels, "feature"])
        ks = GaugeMetricFamily("scoring_server_feature_ks_distance", "Kolmogorov-Smirnov distance (on the "
                               "baseline's bins) of a numeric input column over the drift window.",
                               labels=[*labels, "feature"])
        predicted = GaugeMetricFamily("scoring_server_prediction_drift", "Population stability index of a "
                                      "prediction output over the drift window.", labels=[*labels, "output"])
        rows = GaugeMetricFamily("scoring_server_drift_window_rows", "Sampled rows in the drift window, all "
                                 "workers.", labels=labels)
        for drift in self.versions():
            version = drift.version or ""
            rows.add_metric([drift.model, version], drift.rows)
            for column in drift.features:
                if column.psi is not None:
                    psi.add_metric([drift.model, version, column.name], column.psi)
                if column.ks is not None:
                    ks.add_metric([drift.model, version, column.name], column.ks)
            for column in drift.predictions:
                if column.psi is not None:
                    predicted.add_metric([drift.model, version, column.name], column.psi)
        yield from (psi, ks, predicted, rows)

    def _tracker(self, key: Key) -> Tracker | None:
        """The tracker of a model version, made on first sight; None for a model without a baseline
        (remembered) or one this worker does not serve now (looked for again next time)."""
        with self._lock:
            if key in self._trackers:
                return self._trackers[key]
            scorer = _serving_scorer(self.app, *key)
            if scorer is None:
                return None
            baseline = read_baseline(scorer.model.metadata.path)
            tracker = None
            if baseline is not None:
                description = {"model": key[0], "version": key[1], "baseline": baseline.to_json()}
                names = tuple(feature.name for feature in baseline.features)
                inputs = InputColumns(names, scorer.fast_path.columns if scorer.fast_path else None)
                key_name = _key(description)
                self.counts.publish(key_name, description)
                tracker = Tracker(key_name, baseline, inputs, self.counts, self.window)
            self._trackers[key] = tracker
            return tracker

    def _baseline(self, key: str, description: dict) -> Baseline | None:
        """The baseline a sidecar describes, parsed once."""
        if key not in self._baselines:
            try:
                self._baselines[key] = Baseline.from_json(description["baseline"])
            except (KeyError, ValueError) as exc:
                _logger.warning("Ignoring drift counts %s: %s", key, exc)
                self._baselines[key] = None
        return self._baselines[key]

    def _totals(self, key: str, baseline: Baseline, current: int) -> np.ndarray:
        """Rows, then the count of every bin, in the window ending with slice ``current``, all processes."""
        totals = np.zeros(1 + sum(column.bins.size for column in _columns(baseline)), dtype=np.int64)
        for ring in self.counts.rings(key):
            if ring.shape[1] == len(totals) + 1:
                totals += ring[self.window.live(ring, current), 1:].sum(axis=0)
        return totals

    def _drift(self, model: str, version: str | None, baseline: Baseline, totals: np.ndarray) -> VersionDrift:
        rows, bins = int(totals[0]), totals[1:]
        enough = rows >= self.min_rows
        computed, start = [], 0
        for column in _columns(baseline):
            counts = bins[start:start + column.bins.size]
            start += column.bins.size
            computed.append(self._column(column, counts) if enough else
                            ColumnDrift(column.name, column.kind, None, None, INSUFFICIENT_DATA))
        features, predictions = computed[:len(baseline.features)], computed[len(baseline.features):]
        return VersionDrift(model, version, baseline, rows, tuple(features), tuple(predictions),
                            _worst(computed) if enough else INSUFFICIENT_DATA)

    def _column(self, column: Distribution, counts: np.ndarray) -> ColumnDrift:
        total = counts.sum()
        if not total:
            return ColumnDrift(column.name, column.kind, None, None, INSUFFICIENT_DATA)
        observed = counts / total
        value = psi(observed, column.shares)
        distance = ks_distance(observed[:-1], column.shares[:-1]) if column.kind == NUMERIC else None
        status = ALERT if value >= self.alert_psi else WARN if value >= self.warn_psi else OK
        return ColumnDrift(column.name, column.kind, value, distance, status)


def psi(observed: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index, Σ (o − r)·ln(o / r) over the bins, shares under
    :data:`EPSILON` counted as EPSILON."""
    o, r = np.maximum(observed, EPSILON), np.maximum(reference, EPSILON)
    return float(np.sum((o - r) * np.log(o / r)))


def ks_distance(observed: np.ndarray, reference: np.ndarray) -> float | None:
    """max |CDF_observed − CDF_reference| over the bin edges, among non-missing values: the
    Kolmogorov-Smirnov distance as the bins can see it (a lower bound of the exact one). None
    when either side has only missing values."""
    observed_total, reference_total = observed.sum(), reference.sum()
    if not observed_total or not reference_total:
        return None
    gap = np.cumsum(observed) / observed_total - np.cumsum(reference) / reference_total
    return float(np.max(np.abs(gap)))


def install_drift(app: Flask, config: ServerConfig) -> None:
    """Count drift for ``app``'s models with a baseline and export it at scrape time."""
    directory = server_directory()
    counts: Counts = SharedCounts(directory / "drift") if directory is not None else LocalCounts()
    monitor = DriftMonitor(app, config, counts)
    app.extensions["drift"] = monitor
    app.extensions["observers"].add(monitor.observe)
    app.extensions.setdefault("scrape_collectors", []).append(monitor)


def drift_report(app: Flask) -> dict[str, list[dict]]:
    """The drift of every model version with a baseline, by model name: see :meth:`DriftMonitor.report`."""
    monitor = app.extensions.get("drift")
    return monitor.report() if monitor is not None else {}


def _serving_scorer(app: Flask, model: str, version: str | None) -> Scorer | None:
    """The scorer serving ``model`` at ``version`` in this process now, if any."""
    return next((scorer for scorer in served_scorers(app) if (scorer.identity.name, scorer.identity.version)
                 == (model, version)), None)


def _worst(columns: list[ColumnDrift]) -> str:
    statuses = {column.status for column in columns}
    return next((status for status in (ALERT, WARN, OK) if status in statuses), INSUFFICIENT_DATA)


def _column_json(column: ColumnDrift, name_key: str) -> dict:
    return {name_key: column.name, "kind": column.kind, "psi": _rounded(column.psi), "ks": _rounded(column.ks),
            "status": column.status}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
