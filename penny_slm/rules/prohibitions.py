"""Penny's absolute prohibitions: detect with spans, fix deterministically, never touch code.

One :class:`~penny_slm.rules.view.TextView` per call is what every detector reads: the text after NFKC, with
invisible characters removed and lookalike letters folded, code masked, sentences indexed, and an offset
map back to the original. So ``ＡＭＡＺＩＮＧ``, ``C\u200bJ`` and ``соffее`` are seen, every hit is a span of
the original, and ``!=``, ``*ptr``, ``echo 'hi!'`` or ``COFFEE_TABLE`` inside backticks are nobody's business.
``detect`` is linear in the text length: nothing rescans the text per hit.

Rules (ids are ``ViolationName``s), one module each, whose docstrings say exactly what is and is not caught:
``coffee_reference`` (``rules.coffee``), ``asterisk_action`` (``rules.actions``), ``excess_exclamation``
(``rules.exclamations``), ``caps_enthusiasm`` (``rules.caps``), ``name_overuse`` (``rules.names``), and one
for degenerate output: ``repeated_text`` (``rules.repetition``), which reads the user's message when given.

``fix`` applies one deterministic edit per hit to the original, tidies the spaces and punctuation the edits
left (outside code only) and re-checks until clean, so ``fix(fix(x)) == fix(x)``, the output passes
``detect`` and every code span survives byte for byte.
"""

from __future__ import annotations

import re

from penny_slm.config import Persona
from penny_slm.results import Change
from penny_slm.rules.actions import action_hits
from penny_slm.rules.caps import caps_hits
from penny_slm.rules.coffee import coffee_hits, coffee_match
from penny_slm.rules.exclamations import exclamation_hits
from penny_slm.rules.names import name_hits
from penny_slm.rules.repetition import repetition_hits
from penny_slm.rules.view import CODE, RuleHit, TextView, code_spans, mask_code, protected_spans, sentence_spans

__all__ = ["CODE", "RuleHit", "code_spans", "coffee_match", "detect", "fix", "mask_code", "sentence_spans"]


def detect(original: str, persona: Persona, *, request: str = "") -> list[RuleHit]:
    """Every absolute-prohibition hit in ``original``, sorted by position (code is never inspected).
    ``request``: the user's message, when known (a response may repeat what the user asked it to repeat)."""
    view = TextView.of(original)
    hits = (coffee_hits(view, persona) + action_hits(view) + exclamation_hits(view, persona)
            + caps_hits(view, persona) + name_hits(view, persona) + repetition_hits(view, request))
    return sorted(hits, key=lambda h: (h.start, h.end))


_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_STOP = re.compile(r"(?<=\S) +([.,!?;:])(?!\w)")
_DOUBLE_COMMA = re.compile(r",[ \t]*,")
_BLANK_LINE = re.compile(r"\n[ \t]+\n")
_LEADING_STOP = re.compile(r"(^|\n)[ \t]*,[ \t]*")
_LINE_LEADING_STOP = re.compile(r"(\n)[ \t]*,[ \t]*")


def _tidy(text: str) -> str:
    """Collapse doubled spaces, space before punctuation and doubled commas left by deletions, outside code
    and web addresses only; trim the ends unless code touches them."""
    spans = protected_spans(text)
    out, last = [], 0
    for a, b in [*spans, (len(text), len(text))]:
        prose = text[last:a]
        prose = _SPACES.sub(" ", prose)
        prose = _DOUBLE_COMMA.sub(",", prose)
        prose = _SPACE_BEFORE_STOP.sub(r"\1", prose)
        prose = _BLANK_LINE.sub("\n\n", prose)
        prose = (_LEADING_STOP if last == 0 else _LINE_LEADING_STOP).sub(r"\1", prose)  # "`x`, y" keeps its comma
        out += [prose, text[a:b]]
        last = b
    tidy = "".join(out)
    ends_in_code = bool(spans) and protected_spans(tidy)[-1][1] == len(tidy)
    return tidy.lstrip() if ends_in_code else tidy.strip()


def _apply(original: str, hits: list[RuleHit]) -> tuple[str, list[Change]]:
    pieces, changes, cursor = [], [], len(original)
    for hit in sorted(hits, key=lambda h: (h.start, h.end), reverse=True):
        if hit.end > cursor:  # overlaps an edit already made to its right (e.g. a dropped sentence)
            continue
        changes.append(Change(hit.rule, hit.start, hit.end, original[hit.start:hit.end], hit.replacement))
        pieces += [original[hit.end:cursor], hit.replacement]
        cursor = hit.start
    pieces.append(original[:cursor])
    return "".join(reversed(pieces)), sorted(changes, key=lambda c: c.start)


def fix(original: str, persona: Persona, max_rounds: int = 4, *, request: str = "") -> tuple[str, tuple[Change, ...]]:
    """Apply the deterministic fixes until ``detect`` finds nothing (a fix can expose another hit).

    ``changes`` from the first round index ``original``; later rounds (rare) index the text they edited.
    """
    text, changes = original, []
    for _ in range(max_rounds):
        hits = detect(text, persona, request=request)
        if not hits:
            break
        text, round_changes = _apply(text, hits)
        text = _tidy(text)
        changes += round_changes
    if not text.strip() and original.strip():
        text = "Noted."
    return text, tuple(changes)
