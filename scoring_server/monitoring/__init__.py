"""Watching the server at work. The scoring path reports each request as a
:class:`~.events.ScoringEvent` to the :class:`~.events.Observers` registered on the app, without
knowing who listens (metrics, access logs, payload capture and drift each listen on their own).
"""
from __future__ import annotations

from .events import Observer, Observers, ScoringEvent

__all__ = ["Observer", "Observers", "ScoringEvent"]
