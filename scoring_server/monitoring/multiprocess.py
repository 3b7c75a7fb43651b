"""The directory one server's processes share for what they observe.

gunicorn's workers are separate processes, so what each one counts must be summed by whichever
worker is asked. prometheus_client's multiprocess mode does this with one memory-mapped file per
process and metric kind in a shared directory; drift counts use the same directory. It is made
by the server's master before the model is loaded (so the load is counted) and before the
workers fork, and removed when the master exits. A server run in-process (tests, ``create_app``
alone) has none: its metrics live in memory.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Where prometheus_client's multiprocess mode looks for the directory.
ENV = "PROMETHEUS_MULTIPROC_DIR"

_directory: Path | None = None
_pid = os.getpid()


def _remember_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_remember_pid)


def process_id() -> int:
    """This process's ID, known without a system call: prometheus_client asks on every value
    update (to notice a fork), a dozen times per scoring request."""
    return _pid


def create_server_directory() -> Path:
    """Make this server's directory and switch prometheus_client to multiprocess mode.

    prometheus_client picks its value class from the environment when it is imported, which may
    have happened already (it did in a test's forkserver): it is set again here, with
    :func:`process_id` telling processes apart.
    """
    global _directory
    from prometheus_client import values

    _directory = Path(tempfile.mkdtemp(prefix="scoring-server-metrics-"))
    os.environ[ENV] = str(_directory)
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)
    return _directory


def server_directory() -> Path | None:
    """This server's shared directory; None when the app is not served by pre-forked workers.
    Parts other than prometheus_client keep their files in their own subfolders of it."""
    return _directory


def worker_exited(pid: int) -> None:
    """gunicorn ``child_exit`` hook helper: a dead worker's live gauges (in-flight requests,
    models loaded) go; its counters and histograms stay, so totals never go back."""
    if _directory is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(_directory))


def remove_server_directory() -> None:
    """Remove the directory (the master, at exit) and leave multiprocess mode."""
    global _directory
    if _directory is not None:
        from prometheus_client import values

        shutil.rmtree(_directory, ignore_errors=True)
        os.environ.pop(ENV, None)
        values.ValueClass = values.get_value_class()
        _directory = None
