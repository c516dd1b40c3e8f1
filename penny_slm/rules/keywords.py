"""The keyword research matcher Penny used before the classifier: the A/B baseline and the timeout fallback.

It fires on time-sensitive words anywhere in the message, which is exactly why it over-triggers
("write a function that returns today's date"). Kept deliberately simple so the comparison is honest.
"""

from __future__ import annotations

import re

from penny_slm.results import Category, ResearchClassification

# cue group -> (category it suggests, words)
_CUES: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("verification", ("fact check", "fact-check", "double check", "double-check", "verify", "confirm", "look up", "is it true")),
    ("prices_markets", ("price", "prices", "stock", "stocks", "bitcoin", "crypto", "exchange rate", "market", "cost")),
    ("weather", ("weather", "forecast", "rain", "snow", "temperature")),
    ("sports", ("score", "game", "match", "standings", "playoffs")),
    ("current_events", ("latest", "current", "currently", "today", "tonight", "now", "news", "recent",
                        "recently", "this week", "yesterday", "update", "2025", "2026")),
)
_PATTERNS = tuple(
    (category, re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE))
    for category, words in _CUES
)


def find_cue(text: str) -> tuple[Category, str] | None:
    """The first time-sensitive cue in ``text`` as (suggested category, matched words), or None."""
    for category, pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return category, match.group(0)
    return None


def keyword_classify(text: str) -> ResearchClassification:
    """Baseline verdict: research if any cue matches. Confidence is a fixed 0.5: the matcher has no probability."""
    cue = find_cue(text)
    if cue is None:
        return ResearchClassification(False, 0.5, "keyword matcher: no time-sensitive word found", "general")
    category, word = cue
    return ResearchClassification(True, 0.5, f"keyword matcher: found '{word}'", category)
