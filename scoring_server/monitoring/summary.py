"""``GET /monitoring``: each model's health in one JSON document, read from the same merged numbers
as ``/metrics`` (all workers, since the server started) plus drift over its window.

Per model and version: traffic (requests by outcome, error rate, rows), latency percentiles and the
share of requests slower than the configured objective (``latency_slo_ms``), drift against the
training baseline, and staleness (the model's age against ``max_model_age_days``).
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..config import ServerConfig
from .events import ServedModel

Key = tuple[str, str]  # (model, version); version "" when the model has none
_DAY = 86400.0
PERCENTILES = (0.5, 0.9, 0.99)


def summarize(families: Iterable[Any], config: ServerConfig, drift: dict[str, list[dict]] | None,
              served: Iterable[ServedModel] = (), now: float | None = None) -> dict:
    """The ``/monitoring`` document from prometheus_client metric families, the drift report, and
    the models this process serves (what it knows of them itself: with metrics off, an in-process
    app, or a worker that has not reported yet)."""
    now = time.time() if now is None else now
    requests, rows, buckets, created, flavors = _read(families)
    for model in served:
        key = (model.model, model.version or "")
        flavors.setdefault(key, model.flavor)
        if model.created is not None:
            created.setdefault(key, model.created)
    keys = sorted(set(requests) | set(created) | set(flavors) | _drift_keys(drift))
    return {
        "latency_slo_ms": config.latency_slo_ms,
        "max_model_age_days": config.max_model_age_days,
        "models": [_model(key, requests.get(key, {}), rows.get(key, 0.0), buckets.get(key, {}), created.get(key),
                          flavors.get(key), _drift_of(drift, key), config, now) for key in keys],
    }


def _read(families: Iterable[Any]) -> tuple[dict, dict, dict, dict, dict]:
    """The samples /monitoring needs, by (model, version)."""
    requests: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rows: dict[Key, float] = defaultdict(float)
    buckets: dict[Key, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    created: dict[Key, float] = {}
    flavors: dict[Key, str] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if "model" not in labels:
                continue
            key = (labels["model"], labels.get("version", ""))
            if sample.name == "scoring_server_requests_total":
                requests[key][labels["outcome"]] += sample.value
            elif sample.name == "scoring_server_rows_total":
                rows[key] += sample.value
            elif sample.name == "scoring_server_request_duration_seconds_bucket":
                buckets[key][float(labels["le"])] += sample.value  # summed over outcomes
            elif sample.name == "scoring_server_model_created_timestamp_seconds" and sample.value > 0:
                created[key] = sample.value
            elif sample.name == "scoring_server_model_info" and sample.value > 0:
                flavors[key] = labels.get("flavor", "")
    return requests, rows, buckets, created, flavors


def _model(key: Key, outcomes: dict[str, float], rows: float, buckets: dict[float, float], created: float | None,
           flavor: str | None, drift: dict | None, config: ServerConfig, now: float) -> dict:
    total = sum(outcomes.values())
    errors = total - outcomes.get("success", 0.0)
    return {
        "model": key[0],
        "version": key[1] or None,
        "flavor": flavor,
        "traffic": {
            "requests": int(total),
            "client_errors": int(outcomes.get("client_error", 0.0)),
            "server_errors": int(outcomes.get("server_error", 0.0)),
            "error_rate": errors / total if total else None,
            "rows": int(rows),
        },
        "latency": latency(buckets, config.latency_slo_ms),
        "drift": drift if drift is not None else {"status": "no_baseline", "baseline": False},
        "staleness": staleness(created, config.max_model_age_days, now),
    }


def latency(buckets: dict[float, float], slo_ms: float | None) -> dict:
    """Percentiles (ms) interpolated within histogram buckets, as Prometheus' ``histogram_quantile``
    does, and the share of requests slower than ``slo_ms`` (exact: the objective is a bucket bound)."""
    bounds = sorted(buckets)
    count = buckets.get(math.inf, 0.0)
    result: dict[str, Any] = {f"p{round(q * 100)}_ms": _quantile(q, bounds, buckets, count) for q in PERCENTILES}
    result["slo_ms"] = slo_ms
    over = None
    if slo_ms is not None and count:
        within = buckets.get(slo_ms / 1000)
        over = None if within is None else (count - within) / count
    result["over_slo"] = over
    return result


def _quantile(q: float, bounds: list[float], buckets: dict[float, float], count: float) -> float | None:
    if not count:
        return None
    rank, lower, below = q * count, 0.0, 0.0
    for bound in bounds:
        cumulative = buckets[bound]
        if cumulative >= rank:
            if math.isinf(bound):  # beyond the last finite bound: that bound is all that is known
                return round(lower * 1000, 3)
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return round((lower + (bound - lower) * share) * 1000, 3)
        lower, below = bound, cumulative
    return None


def staleness(created: float | None, max_age_days: float | None, now: float) -> dict:
    """The model's age and whether it is past ``max_age_days`` (None when either is unknown)."""
    if created is None:
        return {"created": None, "age_days": None, "max_age_days": max_age_days, "stale": None}
    age_days = max(now - created, 0.0) / _DAY
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        "age_days": round(age_days, 3),
        "max_age_days": max_age_days,
        "stale": None if max_age_days is None else age_days > max_age_days,
    }


def _drift_keys(drift: dict[str, list[dict]] | None) -> set[Key]:
    return {(name, entry.get("version") or "") for name, entries in (drift or {}).items() for entry in entries}


def _drift_of(drift: dict[str, list[dict]] | None, key: Key) -> dict | None:
    for entry in (drift or {}).get(key[0], []):
        if (entry.get("version") or "") == key[1]:
            return entry
    return None
