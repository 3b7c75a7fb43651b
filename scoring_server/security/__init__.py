"""Who may do what: API keys with scopes, checked in one place for every route.

The app factory installs the check (``security.auth``); routes never look at keys themselves. A
route that shows more to some callers than to others asks :func:`caller_has_scope`.
"""
from __future__ import annotations

SCORE = "score"
READ = "read"
ADMIN = "admin"
SCOPES = (SCORE, READ, ADMIN)


def caller_has_scope(scope: str) -> bool:
    """Whether this request's caller holds ``scope``. Without API keys configured every caller
    does (the server is as open as before keys existed)."""
    from flask import g  # the key commands import this package without serving anything

    scopes = g.get("caller_scopes")
    return scopes is None or scope in scopes
