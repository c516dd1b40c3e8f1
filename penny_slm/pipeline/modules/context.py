"""Context step: what can be measured honestly about a message until the context tracker's heads exist.

It records the message's length and the local time of day (``night`` 23:00–04:59, ``morning``
05:00–11:59, ``afternoon`` 12:00–17:59, ``evening`` 18:00–22:59); the layer adds the research
classifier's category as the topic. The learned dimensions stay ``None`` and ``note`` says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.results import ContextUpdate

CONTEXT_NOTE = "context tracker models not built yet: only message length, local hour and topic are recorded"
MARKER_CONFIDENCE = 0.3
"""Measured markers (time of day, topic) are stored but are not preferences: below the prompt builder's 0.5
bar, so they never reach the system prompt (the 135M local model echoes anything it is shown)."""


def time_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    if 18 <= hour < 23:
        return "evening"
    return "night"


class ContextTracker:
    name: ClassVar[str] = "context"
    requires: ClassVar[frozenset[str]] = frozenset({"normalized"})
    provides: ClassVar[frozenset[str]] = frozenset({"context"})
    model_version: str | None = None

    def load(self, store: ModelRegistry) -> None:
        """Nothing to load yet: the markers need no model."""

    def run(self, turn: TurnContext) -> ContextUpdate:
        text = turn.message.text
        hour = datetime.now().hour
        markers = {"message_chars": len(text), "message_words": len(text.split()), "local_hour": hour,
                   "time_of_day": time_of_day(hour)}
        update = {"key": "active_time_of_day", "value": time_of_day(hour), "confidence": MARKER_CONFIDENCE}
        return ContextUpdate((), None, markers, None, None, (update,), CONTEXT_NOTE)

    def fallback(self, turn: TurnContext, reason: str) -> ContextUpdate:
        """Learning nothing is better than learning wrong: an empty update, nothing queued."""
        return ContextUpdate((), None, {}, None, None, (), f"fallback: {reason}")
