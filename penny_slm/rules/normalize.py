"""Normalize text for detection and classification, keeping a map back to the original.

Why: users and LLMs write full-width letters, zero-width joiners, bidi marks, variation selectors, tag
characters, control bytes and lone surrogates. Models and rules see a clean ``text``; anything shown to a
person uses ``original``. ``fold_lookalikes`` additionally maps Cyrillic/Greek letters that look Latin
(and a few asterisk and exclamation lookalikes) one character to one, so offsets stay valid.
"""

from __future__ import annotations

import re
import unicodedata

from penny_slm.errors import InputError
from penny_slm.results import NormalizedText

MAX_CHARS = 8_000
"""Longer input is cut here (and flagged ``truncated``): the encoder reads at most a few hundred tokens anyway."""

_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"  # zero-width, word joiner, BOM, soft hyphen
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"  # bidi embeddings, overrides, isolates
    "\u034f\u180e\u115f\u1160\u3164\uffa0"  # combining grapheme joiner, Mongolian separator, Hangul fillers
    + "".join(map(chr, range(0xFE00, 0xFE10)))  # variation selectors (the emoji ones included)
    + "".join(map(chr, range(0xE0000, 0xE0080)))  # tag characters ("ASCII smuggling")
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN = re.compile("[\x20-\x7e\n\t]+")

_LOOKALIKES = str.maketrans({
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "с": "c", "р": "p", "х": "x", "у": "y", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d",
    "һ": "h", "ӏ": "l", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J",
    # Greek
    "ο": "o", "α": "a", "ν": "v", "ρ": "p", "ι": "i", "κ": "k", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H",
    "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin oddities and punctuation lookalikes
    "ı": "i", "ɡ": "g", "ǃ": "!", "∗": "*", "⁎": "*", "✱": "*", "✲": "*", "꙳": "*",
})


def normalize(message: object, *, max_chars: int = MAX_CHARS) -> NormalizedText:
    """NFKC per character, drop invisibles, control bytes → space, lone surrogates → U+FFFD.

    Raises ``InputError`` if ``message`` is not a string. Empty input is allowed (modules decide).
    """
    if not isinstance(message, str):
        raise InputError(f"expected a str message, got {type(message).__name__}")
    original = _SURROGATE.sub("\ufffd", message)
    truncated = len(original) > max_chars
    cut = original[:max_chars]
    out: list[str] = []
    offsets: list[int] = []
    pos = 0
    for run in _PLAIN.finditer(cut):  # printable ASCII is its own NFKC form: copy it in one step
        _normalize_chars(cut, pos, run.start(), out, offsets)
        out.append(run.group())
        offsets.extend(range(run.start(), run.end()))
        pos = run.end()
    _normalize_chars(cut, pos, len(cut), out, offsets)
    return NormalizedText(original=original, text="".join(out), offsets=tuple(offsets), truncated=truncated)


def fold_lookalikes(text: str) -> str:
    """Cyrillic/Greek letters that look Latin → Latin, asterisk/``!`` lookalikes → ``*``/``!``; same length."""
    return text.translate(_LOOKALIKES)


def _normalize_chars(text: str, start: int, end: int, out: list[str], offsets: list[int]) -> None:
    for i in range(start, end):
        ch = text[i]
        if ch in _INVISIBLE:
            continue
        if unicodedata.category(ch) == "Cc" and ch not in "\n\t":
            ch = " "
        for piece in unicodedata.normalize("NFKC", ch):
            out.append(piece)
            offsets.append(i)
