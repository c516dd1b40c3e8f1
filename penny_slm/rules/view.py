"""What every detector reads: one normalized copy of a response, with code masked and sentences indexed.

Why one view: each detector used to rescan the text (and rebuild the code mask) for every hit, which made
``detect`` quadratic in the text length. The view is built once per ``detect`` call in linear time:

- ``text`` is the response after NFKC, with zero-width, bidi and other invisible characters removed and
  lookalike letters folded (``normalize`` and ``fold_lookalikes``), so ``ＡＭＡＺＩＮＧ``, ``C\u200bJ`` and
  ``соffее`` (Cyrillic) read as ``AMAZING``, ``CJ`` and ``coffee``;
- every character of a code span (fenced block or inline backticks, found in the original) and of a web
  address is replaced by ``CODE_MASK``, which is neither a word character nor sentence punctuation, so no
  detector matches into, across or out of code or a URL and sentences are never split inside them;
- ``offsets[i]`` is the index in ``original`` of ``text[i]``; ``span`` maps a hit back, so fixes edit the
  original (zero-width characters inside a hit go with it);
- sentence boundaries are found once; ``sentence(i)`` is a binary search.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from penny_slm.results import ViolationName
from penny_slm.rules.normalize import fold_lookalikes, normalize

CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'`\]\[(){}]+(?<![.,;:!?])")
_W = r"[\w\u00ad\u200b-\u200f\u2060-\u2064\ufeff]"  # a word character, or one that normalize() deletes
IDENTIFIER = re.compile(rf"(?<!{_W})(?={_W}*_)(?={_W}*[^\W\d_]){_W}+")
"""A snake_case or SCREAMING_SNAKE name written outside backticks (``COFFEE_TABLE``, ``user_name``): code, so no rule
reads a word inside it (the coffee rule turned ``for COFFEE_TABLE.`` into ``for a break_TABLE.``)."""
"""A web address: masked like code (its ``!``, capitals and names are nobody's business and never edited)."""
CODE_MASK = "\ue000"
"""Stands for one code character in the view (a private-use character: not a letter, digit or stop)."""

# A sentence piece: text up to a stop (. ! ? …) that is followed by space, a quote/bracket or the end, or up to a
# line break; then its trailing spaces and line breaks. "3.5", "README.md" and "e.g.x" do not end a sentence.
SENTENCE_PIECE = re.compile(r"(?:[^.!?\n]|[.!?]+(?![.!?\s\"'”’)\]]|$))*(?:[.!?]+[\"'”’)\]]*)?[ \t]*\n*")


_LEAD = re.compile(r"[\s>#*_\"'“‘(\[-]*")


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A violation at ``original[start:end]``; ``replacement`` is the deterministic fix for that span."""

    rule: ViolationName
    start: int
    end: int
    replacement: str


def code_spans(text: str) -> list[tuple[int, int]]:
    """Fenced blocks and inline code in ``text``: what no rule ever reads or edits."""
    return [m.span() for m in CODE.finditer(text)]


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Code spans, and web addresses and snake_case names outside code, sorted: what detection masks and no fix edits."""
    code = code_spans(text)
    prose = mask_code(text, code)
    loose = [m.span() for m in URL.finditer(prose)]
    loose += [m.span() for m in IDENTIFIER.finditer(mask_code(prose, loose))]
    return sorted(code + loose) if loose else code


def mask_code(text: str, spans: list[tuple[int, int]]) -> str:
    """Same length as ``text``, every code character replaced by 'x': sentence splitting never sees code."""
    out, last = [], 0
    for a, b in spans:
        out += [text[last:a], "x" * (b - a)]
        last = b
    out.append(text[last:])
    return "".join(out)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of ``text`` with their trailing spaces and line breaks, code never split; contiguous,
    so joining the pieces gives ``text`` back and dropping one leaves the rest well formed."""
    prose = mask_code(text, code_spans(text))
    return [m.span() for m in SENTENCE_PIECE.finditer(prose) if m.end() > m.start()]


@dataclass(frozen=True, slots=True)
class TextView:
    """See the module docstring. Coordinates are view indices unless a name says ``original``."""

    original: str
    text: str
    offsets: tuple[int, ...]
    code: tuple[tuple[int, int], ...]
    """Code spans and web addresses in the original (``protected_spans``)."""
    code_view: tuple[tuple[int, int], ...]
    """The same spans in view coordinates."""
    sentence_starts: tuple[int, ...]
    """View index where each sentence piece starts (the first is 0)."""

    @classmethod
    def of(cls, original: str) -> TextView:
        """The view of a response: normalized, lookalikes folded, code and addresses masked, with offsets back to the
        original."""
        code = tuple(protected_spans(original))
        norm = normalize(original, max_chars=len(original) + 1)
        text, offsets = fold_lookalikes(norm.text), norm.offsets
        code_view = tuple((bisect_left(offsets, a), bisect_left(offsets, b)) for a, b in code)
        if code_view:
            pieces, last = [], 0
            for a, b in code_view:
                pieces += [text[last:a], CODE_MASK * (b - a)]
                last = b
            pieces.append(text[last:])
            text = "".join(pieces)
        starts = tuple(m.start() for m in SENTENCE_PIECE.finditer(text) if m.end() > m.start()) or (0,)
        return cls(original, text, offsets, code, code_view, starts)

    def pos(self, i: int) -> int:
        """The original index where view index ``i`` starts (``len(original)`` at the end)."""
        return self.offsets[i] if i < len(self.offsets) else len(self.original)

    def span(self, a: int, b: int) -> tuple[int, int]:
        """The original span of the view span ``[a, b)``: from ``a``'s character to the end of ``b - 1``'s."""
        return self.pos(a), (self.offsets[b - 1] + 1 if b > a else self.pos(a))

    def sentence(self, i: int) -> tuple[int, int]:
        """The view span of the sentence piece holding view index ``i`` (trailing spaces and breaks included)."""
        k = bisect_right(self.sentence_starts, i) - 1
        end = self.sentence_starts[k + 1] if k + 1 < len(self.sentence_starts) else len(self.text)
        return self.sentence_starts[max(k, 0)], end

    def starts_sentence(self, i: int) -> bool:
        """True if only spaces, quotes, brackets and Markdown marks (``>``, ``#``, ``-``, ``*``, ``_``) come
        between the start of ``i``'s sentence and ``i``."""
        s, _ = self.sentence(i)
        if i - s > 200:
            return False
        lead = _LEAD.match(self.text, s, i)
        return lead is not None and lead.end() == i

    def holds_code(self, a: int, b: int) -> bool:
        """True if the view span ``[a, b)`` overlaps a code span."""
        k = bisect_right(self.code_view, (a, len(self.text) + 1)) - 1
        return any(x < b and a < y for x, y in self.code_view[max(k, 0):k + 2])

    def in_code(self, i: int) -> bool:
        """Whether position ``i`` of the view is inside masked code."""
        return 0 <= i < len(self.text) and self.text[i] == CODE_MASK
