"""The cache of built environments: one directory per key, published by a rename once complete, built by one
process at a time."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_logger = logging.getLogger(__name__)
ROOT_ENV = "SCORING_SERVER_ENV_ROOT"


def cache_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "scoring-server" / "envs").expanduser()


def cached_environment(root: Path, key: str, build: Callable[[Path], None]) -> Path:
    """The environment ``root/key``, made by ``build(directory)`` unless it exists. A build happens in a
    temporary directory renamed to ``key`` only when complete, so a failed or killed build never looks done;
    the lock makes servers starting together wait for one build instead of each making their own."""
    environment = root / key
    if environment.is_dir():
        _logger.info("Using the cached environment %s", environment)
        return environment
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{key}.lock"):
        if environment.is_dir():  # built by the process that held the lock
            _logger.info("Using the environment %s, just built by another process", environment)
            return environment
        for leftover in root.glob(f"{key}.building-*"):  # a killed build's: nobody else builds this key now
            shutil.rmtree(leftover, ignore_errors=True)
        building = Path(tempfile.mkdtemp(prefix=f"{key}.building-", dir=root))
        try:
            build(building)
            building.rename(environment)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return environment


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _logger.info("Waiting for another process building the same environment (%s)", path)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
