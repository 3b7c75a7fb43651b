"""Watching the server at work. The scoring path, the batcher and the model catalog report what
happens as events (:mod:`.events`) to the :class:`~.events.Observers` registered on the app,
without knowing who listens: metrics, access logs, payload capture and drift each listen on their own.
"""
from __future__ import annotations

from .events import (BatchEvent, Event, ModelLoadEvent, Observer, Observers, ScoringEvent, ServedModel,
                     ServedModelsEvent)

__all__ = ["BatchEvent", "Event", "ModelLoadEvent", "Observer", "Observers", "ScoringEvent", "ServedModel",
           "ServedModelsEvent"]
