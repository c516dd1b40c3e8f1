"""``repeated_text``: a sentence or a phrase a small model looped (issue 23: SmolLM2 said one sentence six times).

No persona rule names this; it is degenerate output, not a slip of tone. Two shapes, both read on the
normalized view with code masked (code is never inspected):

- **a sentence said again**: a sentence piece whose words (lower-cased, punctuation ignored) equal an earlier
  piece's. Flagged when it directly follows its twin and has at least ``MIN_LOOP_WORDS`` words, or, further
  away, when it is a full sentence (ends in ``.``, ``!`` or ``?``) of at least ``MIN_ECHO_WORDS`` words.
- **a phrase looped inside one sentence**: the same run of ``MIN_PHRASE_WORDS``–``MAX_PHRASE_WORDS`` words
  three or more times in a row ("I think that I think that I think that").

Never flagged (legitimate repetition): any sentence on a list item's, table row's, heading's or ``>`` quote's
line (parallel structure is their point: ``3. Physical evidence: ...``, ``- ... Overall, it deserves a B.``)
unless it loops inside its own item, sentences holding code, lines of maths (``4x^3 = 9x``, ``c^2 = a^2 + b^2``:
an operator between terms and fewer than four words), runs of numbers
(``1/6 + 1/6 + 1/6``), sentences inside quotation marks, a sentence whose words the user's own message contains
(quoting the user), and anything at all when the user's message asks for repetition (a refrain, a chorus, a
poem or song, "say it three times": ``REPEAT_REQUEST``). A piece of single letters (``J.A.V.I.S.``) is not a
sentence.

Fix: the repeats are deleted with the space before them, the first occurrence stays ("A. A. A. B." → "A. B.").
Linear time: one dictionary of sentence keys, and a phrase scan of at most ``MAX_PHRASE_WORDS`` steps per word.
"""

from __future__ import annotations

import re

from penny_slm.rules.view import RuleHit, TextView

MIN_LOOP_WORDS = 3
MIN_ECHO_WORDS = 5
MIN_PHRASE_WORDS = 3
MAX_PHRASE_WORDS = 16
PHRASE_TIMES = 3

REPEAT_REQUEST = re.compile(
    r"\b(?:repeat\w*|refrain|chorus|poem|song|lyrics?|verses?|chant|mantra|rap|hymn|anthem|jingle|nursery|"
    r"again and again|over and over|\d+\s+times|(?:two|three|four|five|six|seven|eight|nine|ten)\s+times|twice|thrice)\b",
    re.IGNORECASE)
"""A user message asking for repetition: then nothing in the response is flagged as repeated."""
_WORD = re.compile(r"[^\W_]+")
_LINE_MARK = re.compile(r"[ \t]*(?:[-*+•>|#]|\d+[.)])")
_QUOTES = "\"'“”‘’"
_MATHS = re.compile(r"[=≈^√×÷≤≥<>]|\w\s*[+*/]\s*\w")
_PROSE_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def asks_for_repetition(request: str) -> bool:
    """Whether the user asked for repetition (a refrain, a song or poem, "three times"): then none is flagged.
    """
    return REPEAT_REQUEST.search(request) is not None


def _key(piece: str) -> str:
    return " ".join(_WORD.findall(piece.lower()))


def repetition_hits(view: TextView, request: str = "") -> list[RuleHit]:
    """Every repeat in the response (see the module docstring); ``request``: the user's message, if known."""
    if request and asks_for_repetition(request):
        return []
    t = view.text
    said_by_user = f" {_key(request)} "
    bounds = [*view.sentence_starts, len(t)]
    seen: set[str] = set()
    hits: list[RuleHit] = []
    prev_key, prev_end = "", 0  # the previous piece's words, and where its text (not its trailing space) ends
    for s, e in zip(bounds, bounds[1:]):
        body = t[s:e].rstrip()
        end = s + len(body)
        key = _key(body)
        n = key.count(" ") + 1 if any(len(w) >= 2 for w in key.split()) else 0
        line_start = t.rfind("\n", 0, s) + 1
        listed = _LINE_MARK.match(t, line_start) is not None
        maths = _MATHS.search(body) is not None and len(_PROSE_WORD.findall(body)) < 4
        exempt = (not key or view.holds_code(s, e) or maths
                  or (body[:1] in _QUOTES and body.rstrip(".!?")[-1:] in _QUOTES) or f" {key} " in said_by_user)
        looped = key == prev_key and n >= MIN_LOOP_WORDS and (not listed or prev_end > line_start)
        if not exempt and (looped or (key in seen and not listed and n >= MIN_ECHO_WORDS and body[-1:] in ".!?")):
            hits.append(RuleHit("repeated_text", *view.span(prev_end, end), ""))
        elif not exempt:
            hits += _phrase_loops(view, s, end)
        if key and not exempt and not listed:
            seen.add(key)
        prev_key, prev_end = (key if not exempt else ""), end
    return hits


def _phrase_loops(view: TextView, start: int, end: int) -> list[RuleHit]:
    """A run of words said ``PHRASE_TIMES`` times or more in a row inside ``view.text[start:end]``: the
    later copies go (from the end of the first copy to the end of the last)."""
    words = list(_WORD.finditer(view.text, start, end))
    tokens = [w.group().lower() for w in words]
    hits: list[RuleHit] = []
    i = 0
    while i < len(tokens):
        found = False
        for p in range(MIN_PHRASE_WORDS, min(MAX_PHRASE_WORDS, (len(tokens) - i) // PHRASE_TIMES) + 1):
            run = 0
            while i + run + p < len(tokens) and tokens[i + run] == tokens[i + run + p]:
                run += 1
            copies = 1 + run // p
            if copies >= PHRASE_TIMES and any(t.isalpha() for t in tokens[i:i + p]):
                last = i + copies * p - 1
                hits.append(RuleHit("repeated_text", *view.span(words[i + p - 1].end(), words[last].end()), ""))
                i, found = last + 1, True
                break
        if not found:
            i += 1
    return hits
