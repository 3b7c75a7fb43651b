"""The models one worker has loaded: at most ``max_loaded``, optionally under a memory budget,
least recently used unloaded first. An unloaded model's scorer is closed, so nothing of it stays."""
from __future__ import annotations

import gc
import resource
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..pipeline import Scorer


@dataclass
class CachedModel:
    """A loaded model's scorer and when it was last used (epoch seconds)."""

    scorer: Scorer
    last_used: float


class LoadedModels:
    """Name → loaded scorer, in least-recently-used order. Thread-safe; never holds its lock
    while closing scorers or collecting garbage."""

    def __init__(self, max_loaded: int, max_memory_mb: float | None = None) -> None:
        self.max_loaded = max_loaded
        self.max_memory_mb = max_memory_mb
        self._models: OrderedDict[str, CachedModel] = OrderedDict()
        self._lock = threading.Lock()

    def use(self, name: str) -> Scorer | None:
        """The loaded scorer of ``name``, now the most recently used; None if not loaded."""
        with self._lock:
            cached = self._models.get(name)
            if cached is None:
                return None
            self._models.move_to_end(name)
            cached.last_used = time.time()
            return cached.scorer

    def get(self, name: str) -> CachedModel | None:
        """``name``'s cache entry, without counting as a use."""
        with self._lock:
            return self._models.get(name)

    def names(self) -> list[str]:
        """The loaded names, least recently used first."""
        with self._lock:
            return list(self._models)

    def add(self, name: str, scorer: Scorer) -> list[str]:
        """Keep ``scorer`` as ``name``'s; unload beyond the count, then beyond the memory budget.
        Returns the names unloaded."""
        with self._lock:
            self._models[name] = CachedModel(scorer, time.time())
            evicted = [self._models.popitem(last=False) for _ in range(len(self._models) - self.max_loaded)]
        _close(evicted)
        if self.max_memory_mb is not None:
            evicted += self._fit_memory()
        return [name for name, _ in evicted]

    def replace(self, name: str, scorer: Scorer) -> bool:
        """Serve ``scorer`` for ``name`` if it is still loaded (a new version); False otherwise."""
        with self._lock:
            cached = self._models.get(name)
            previous = cached.scorer if cached else None
            if cached is not None:
                cached.scorer = scorer
        if previous is None:
            scorer.close()
            return False
        previous.close()
        return True

    def remove(self, name: str) -> bool:
        """Unload ``name``; whether it was loaded."""
        with self._lock:
            cached = self._models.pop(name, None)
        _close([(name, cached)] if cached else [])
        return cached is not None

    def _fit_memory(self) -> list[tuple[str, CachedModel]]:
        """Unload the least recently used until under budget, keeping the newest one."""
        evicted = []
        gc.collect()
        while _rss_mb() > self.max_memory_mb:
            with self._lock:
                if len(self._models) <= 1:
                    break
                oldest = self._models.popitem(last=False)
            _close([oldest])
            evicted.append(oldest)
            gc.collect()
        return evicted


def _close(evicted: list[tuple[str, CachedModel]]) -> None:
    for _, cached in evicted:
        cached.scorer.close()


def _rss_mb() -> float:
    """This process's resident memory now (Linux /proc; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
