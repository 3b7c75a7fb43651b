"""Request IDs: every request has one, so a client quoting it lets an operator find its log lines,
its access-log line and its captured payload."""
from __future__ import annotations

from flask import g, has_request_context


def current_request_id() -> str | None:
    """The ID of the request being handled on this thread; None outside a request."""
    return g.get("request_id") if has_request_context() else None
