"""Preferences a user states outright about Penny's replies: "keep your answers short", "no jargon please",
"I'm comfortable with technical terms".

Why rules: a stated preference is the user's own words about how Penny should answer, so it is learned at once
(high confidence) rather than estimated over many messages like formality; and a wrong guess here changes every
later reply, so only requests addressed to Penny count. A request about something else ("how do I keep my speech
short?", "explain it without jargon to my boss") does not match: the length rules need "your answers/replies" or a
"from now on"-style marker, the jargon rules a short directive ("no jargon please", "cut the jargon."). What the
patterns miss is left for the generative SLM (issue 18; not built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REPLIES = r"(?:answers|replies|responses|messages|explanations)"
ASKING = r"(?:give\s+me|i(?:'d|\s+would)?\s+(?:like|prefer|want)|can\s+i\s+(?:get|have)|please(?:\s+give\s+me)?)"
"""A lead that makes "shorter answers" a request to Penny ("I'd prefer shorter answers", not "I gave shorter answers")."""
LASTING = r"(?:from\s+now\s+on|going\s+forward|in\s+(?:the\s+)?future|always|every\s+time)"


@dataclass(frozen=True, slots=True)
class StatedPreference:
    """One preference found in a message: ``key`` and ``value`` (``reply_length``: ``short`` or ``detailed``;
    ``jargon``: ``avoid`` or ``welcome``) and the span that states it (``start``/``end`` in the message)."""

    key: str
    value: str
    start: int
    end: int


PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("reply_length", "short", re.compile(
        rf"\b(?:keep|make)\s+(?:your\s+)?{REPLIES}\s+(?:short|shorter|brief|briefer|concise)\b"
        rf"|\b{ASKING}\s+(?:much\s+)?(?:shorter|briefer|more\s+concise)\s+{REPLIES}\b"
        rf"|\b(?:shorter|briefer|more\s+concise)\s+{REPLIES},?\s+please\b"
        rf"|\b{LASTING}\b[^.?!\n]{{0,30}}\b(?:keep\s+it|be)\s+(?:short|brief|concise)\b"
        rf"|\b(?:keep\s+it|be)\s+(?:short|brief|concise)\b[^.?!\n]{{0,10}}\b{LASTING}\b"
        r"|\byou(?:'re|\s+are)\s+(?:too|way\s+too|so)\s+(?:wordy|verbose|long[- ]winded)\b", re.IGNORECASE)),
    ("reply_length", "detailed", re.compile(
        rf"\b{ASKING}\s+(?:much\s+)?(?:longer|more\s+detailed|fuller|more\s+thorough)\s+{REPLIES}\b"
        rf"|\b(?:longer|more\s+detailed|fuller|more\s+thorough)\s+{REPLIES},?\s+please\b"
        rf"|\b(?:make|keep)\s+(?:your\s+)?{REPLIES}\s+(?:longer|more\s+detailed|thorough|detailed)\b"
        r"|\byou(?:'re|\s+are)\s+(?:too|way\s+too|so)\s+(?:brief|terse|curt)\b", re.IGNORECASE)),
    ("jargon", "avoid", re.compile(
        r"(?:^|[.!?,;\n])\s*(?:please\s+)?(?:no|less|fewer|cut\s+the|skip\s+the|drop\s+the|stop\s+with\s+the)\s+"
        r"(?:jargon|technical\s+terms|buzzwords)(?:,?\s+please)?\s*(?:[.!]|$)"
        r"|\bstop\s+using\s+(?:so\s+much\s+)?(?:jargon|technical\s+terms|buzzwords)\b"
        rf"|\b(?:without|no)\s+(?:the\s+)?jargon\b[^.?!\n]{{0,10}}\b{LASTING}\b"
        rf"|\b{LASTING}\b[^.?!\n]{{0,30}}\b(?:without|no)\s+(?:the\s+)?jargon\b", re.IGNORECASE | re.MULTILINE)),
    ("jargon", "welcome", re.compile(
        r"\b(?:jargon|technical\s+terms)\s+(?:is|are)\s+(?:fine|ok|okay|welcome)\b"
        r"|\bi(?:'m|\s+am)\s+(?:quite\s+|very\s+|pretty\s+)?(?:familiar|comfortable|fine)\s+with\s+(?:tech(?:nical)?\s+)?"
        r"(?:jargon|technical\s+terms)\b"
        r"|\byou\s+can\s+(?:be\s+(?:more\s+)?technical|use\s+(?:the\s+)?(?:jargon|technical\s+terms))\b"
        r"|\bdon'?t\s+(?:dumb|water)\s+(?:it|things)\s+down\b", re.IGNORECASE)),
)
"""``(key, value, pattern)``. Each key takes the value of its last match in the message (a user who corrects
themselves within one message means the later request)."""


def stated_preferences(text: str) -> list[StatedPreference]:
    """The preferences ``text`` states, one per key (its last statement in the text), in the order of ``PATTERNS``'
    keys."""
    found: dict[str, StatedPreference] = {}
    for key, value, pattern in PATTERNS:
        for m in pattern.finditer(text):
            if key not in found or m.start() >= found[key].start:
                found[key] = StatedPreference(key, value, m.start(), m.end())
    return list(found.values())
