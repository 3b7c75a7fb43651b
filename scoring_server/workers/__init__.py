"""gunicorn worker classes: JSON errors from the HTTP layer, request deadlines, graceful drain,
slow-client protection.

* :mod:`.thread` — the default (``worker_class: thread``): gunicorn's gthread worker whose event
  loop reads each request whole (head and body, under ``header_timeout`` and ``body_timeout``)
  before a thread sees it, so slow clients cost a socket, never a thread.
* :mod:`.sync` — ``worker_class: sync``: one request at a time, for a buffering proxy in front
  (docs/security.md has a tested nginx configuration).

Both answer every error of the HTTP layer as MLflow-style JSON (:mod:`.http_errors`), answer a
request past ``request_timeout`` with a JSON 504 and keep serving (:mod:`.deadlines`), and drain
on SIGTERM (:mod:`.drain`). What the app may ask of them (the current request's deadline, whether
the server is stopping) is in :mod:`.context`, which imports nothing of gunicorn.
"""
from __future__ import annotations

#: ``worker_class`` configuration values and the gunicorn worker class each one names.
WORKER_CLASSES = {
    "thread": "scoring_server.workers.thread.ThreadWorker",
    "sync": "scoring_server.workers.sync.SyncWorker",
}
