"""Penny's absolute prohibitions: detect with spans, fix deterministically, never touch code.

Detection reads a normalized copy (NFKC, invisibles removed, homoglyphs and leetspeak folded for the
banned-phrase check) and maps every hit back to the original text. Code blocks and inline code are
masked first: ``!=``, ``*ptr``, ``echo 'hi!'`` and ``COFFEE_TABLE`` inside backticks are nobody's business.

Rules (ids are ``ViolationName``s): ``coffee_reference``, ``asterisk_action``, ``excess_exclamation``,
``caps_enthusiasm``, ``name_overuse``. ``fix`` applies one deterministic edit per hit and re-checks
until clean, so ``fix(fix(x)) == fix(x)`` and the output passes ``detect``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from penny_slm.config import Persona
from penny_slm.results import Change, ViolationName
from penny_slm.rules.normalize import normalize

# Lookalikes folded only for the banned-phrase check (Cyrillic/Greek letters, leetspeak digits).
_FOLD = str.maketrans({"а": "a", "е": "e", "о": "o", "с": "c", "р": "p", "х": "x", "ѕ": "s", "і": "i", "ο": "o",
                       "ε": "e", "0": "o", "3": "e", "4": "a", "1": "i", "@": "a", "$": "s", "ƒ": "f"})

CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)

ACTION_VERBS = frozenset(["sips", "laughs", "grins", "smiles", "winks", "nods", "sighs", "shrugs", "waves", "leans", "adjusts", "raises", "rolls", "clears", "chuckles", "giggles", "beams", "bounces", "claps", "dances", "gasps", "hugs", "jumps", "pauses", "points", "pouts", "smirks", "snaps", "spins", "stretches", "taps", "tilts", "twirls", "yawns", "blushes", "cheers", "cries", "facepalms", "gestures", "glances", "hums", "peeks", "pokes", "pats", "scratches", "shakes", "squeals", "whispers", "wiggles", "pours", "brews", "cracks", "crosses", "rubs", "hands", "offers", "slides", "sits", "stands", "walks", "flips", "throws", "tosses", "kicks", "high-fives", "fist-bumps", "salutes", "bows", "curtsies", "sniffs", "coughs", "snorts", "blinks", "stares", "squints", "frowns", "groans", "mutters", "grumbles", "celebrates", "does", "drinks", "eats", "munches", "grabs", "holds", "picks", "puts", "sets", "takes", "types", "writes", "reads", "checks", "looks", "leans", "thinks", "ponders", "wonders", "mimes", "fans", "hops", "skips", "struts", "sways", "rocks"])
_NOT_ACTIONS = frozenset(["is", "was", "has", "does", "this", "its", "yes", "always", "sometimes", "perhaps", "less", "unless", "thus", "plus", "across", "its", "his", "hers", "ours", "yours", "theirs", "as", "us", "gas", "bus", "news"])
_ASTERISK = re.compile(r"(?<![*\w\\])\*(?![\s*])([^*\n]{1,80}?)(?<![\s\\])\*(?![*\w])")
_WORD_CAPS = re.compile(r"(?<![\w'])[A-Z][A-Z']*[A-Z](?![\w'])")
_EXCITED_SHORT = frozenset({"SO", "OMG", "WOW", "YES", "YAY", "LOL", "OOH", "AAH", "OH", "HUGE", "FUN", "BIG", "TOP", "GO"})
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+[\"')\]]*|\n|$)")
_SENTENCE_PIECE = re.compile(r"[^.!?\n]*(?:[.!?]+[\"')\]]*)?[ \t]*\n*")


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A violation at ``original[start:end]``; ``replacement`` is the deterministic fix for that span."""

    rule: ViolationName
    start: int
    end: int
    replacement: str


def code_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in CODE.finditer(text)]


def _in(spans: list[tuple[int, int]], pos: int) -> bool:
    return any(a <= pos < b for a, b in spans)


@lru_cache(maxsize=8)
def _coffee_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    words = sorted((t.lower().translate(_FOLD) for t in terms if t.isascii()), key=len, reverse=True)
    symbols = [t for t in terms if not t.isascii()]
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) + r"\b" for w in words)
    first = re.escape("".join(sorted({w[0] for w in words})))
    # the lookahead on first letters lets the engine skip most positions without trying every word
    parts = ([rf"\b(?=[{first}])(?:{alternatives})"] if words else []) + [re.escape(s) for s in symbols]
    return re.compile("|".join(parts))


def coffee_match(text: str, persona: Persona, since: int = 0) -> bool:
    """True if a banned coffee term ends after ``since`` in ``text`` (case-, homoglyph- and leet-folded).

    The rewriter's decoder calls this per candidate token, with ``since`` at the old end of the text."""
    folded = normalize(text, max_chars=len(text) + 1).text.lower().translate(_FOLD)
    return any(m.end() > since for m in _coffee_pattern(persona.banned_phrases.coffee_reference).finditer(folded))


def mask_code(text: str, spans: list[tuple[int, int]]) -> str:
    """Same length as ``text``, every code character replaced by 'x': sentence splitting never sees code."""
    chars = list(text)
    for a, b in spans:
        chars[a:b] = "x" * (b - a)
    return "".join(chars)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of ``text`` with their trailing spaces and line breaks, code never split; contiguous,
    so joining the pieces gives ``text`` back and dropping one leaves the rest well formed."""
    prose = mask_code(text, code_spans(text))
    return [m.span() for m in _SENTENCE_PIECE.finditer(prose) if m.end() > m.start()]


def _sentence_span(prose: str, pos: int) -> tuple[int, int]:
    """The sentence around ``pos`` in ``prose`` (a ``mask_code`` copy, so offsets match the original)."""
    for m in _SENTENCE.finditer(prose):
        if m.start() <= pos < max(m.end(), m.start() + 1):
            return m.span()
    return pos, pos + 1


def _coffee_hits(original: str, persona: Persona, masked: list[tuple[int, int]]) -> list[RuleHit]:
    norm = normalize(original, max_chars=len(original) + 1)
    folded = norm.text.lower().translate(_FOLD)
    hits: list[RuleHit] = []
    pattern = _coffee_pattern(persona.banned_phrases.coffee_reference)
    for m in pattern.finditer(folded):
        start, end = norm.offsets[m.start()], norm.offsets[m.end() - 1] + 1
        if _in(masked, start):
            continue
        if not m.group(0).isalpha() and not m.group(0).strip().isascii():  # an emoji: drop just the symbol
            hits.append(RuleHit("coffee_reference", start, end, ""))
            continue
        s_start, s_end = _sentence_span(mask_code(original, masked), start)
        holds_code = any(a < s_end and s_start < b for a, b in masked)
        rest = (original[:s_start] + original[s_end:]).strip()
        if rest and not holds_code:
            hits.append(RuleHit("coffee_reference", s_start, s_end, ""))  # drop the coffee aside
        elif holds_code:  # never touch code: lose just the coffee word
            hits.append(RuleHit("coffee_reference", start, end, ""))
        else:  # the whole response is one coffee sentence: keep it, lose the coffee
            hits.append(RuleHit("coffee_reference", start, end, "a break"))
    return hits


def _asterisk_hits(original: str, masked: list[tuple[int, int]]) -> list[RuleHit]:
    hits = []
    for m in _ASTERISK.finditer(original):
        if _in(masked, m.start()):
            continue
        words = m.group(1).split()
        first = words[0].lower().strip(".,!?")
        is_action = first in ACTION_VERBS or (
            first not in _NOT_ACTIONS and first.endswith("s") and first.isalpha() and len(words) >= 2 and m.group(1)[0].islower()
        )
        if is_action:
            start, end = m.span()
            # swallow one neighbouring space so "Sure *grins* thing" becomes "Sure thing"
            if end < len(original) and original[end] == " ":
                end += 1
            elif start > 0 and original[start - 1] == " ":
                start -= 1
            hits.append(RuleHit("asterisk_action", start, end, ""))
    return hits


def _exclamation_hits(original: str, persona: Persona, masked: list[tuple[int, int]]) -> list[RuleHit]:
    runs = []
    for m in re.finditer(r"[!！]+", original):
        if _in(masked, m.start()):
            continue
        after = original[m.end(): m.end() + 9]
        if after.startswith("=") or after.lower().startswith("important"):
            continue
        runs.append(m)
    hits: list[RuleHit] = []
    budget = persona.max_exclamations
    for m in runs:
        before = original[m.start() - 1] if m.start() else ""
        after_stop = before in ("?", ".")  # "done.!!" keeps no "!": the sentence already ended
        keep = 0 if after_stop else min(budget, len(m.group(0)))
        budget -= keep
        if keep == len(m.group(0)) and m.group(0).count("！") == 0:
            continue
        tail = "" if after_stop or not before else "."
        hits.append(RuleHit("excess_exclamation", m.start(), m.end(), "!" * keep if keep else tail))
    return hits if len(runs) and sum(len(m.group(0)) for m in runs) > persona.max_exclamations else []


def _phrase_spans(text: str, phrases: list[str]) -> list[tuple[int, int]]:
    """Where allow-listed phrases ("GROUP BY", "LEFT JOIN") occur: words that are ordinary English alone
    (GROUP, LEFT) are technical only inside them."""
    patterns = [r"(?<![\w'])" + r"\s+".join(map(re.escape, p.split())) + r"(?![\w'])" for p in phrases]
    return [m.span() for pattern in patterns for m in re.finditer(pattern, text, re.IGNORECASE)]


def _caps_hits(original: str, persona: Persona, masked: list[tuple[int, int]]) -> list[RuleHit]:
    if not persona.ban_caps_enthusiasm:
        return []
    allow = {w.upper() for w in persona.caps_allowlist if " " not in w}
    warn = {w.upper() for w in persona.warning_words}
    candidates = [m for m in _WORD_CAPS.finditer(original) if not _in(masked, m.start())]
    phrases = _phrase_spans(original, [w for w in persona.caps_allowlist if " " in w]) if candidates else []
    hits = []
    for m in candidates:
        word = m.group(0)
        if word.upper() in allow or word.upper() in warn or _in(phrases, m.start()):
            continue
        if not re.search(r"[AEIOUY]", word):  # no vowel: an acronym (HTTP, SQL, PNG)
            continue
        if len(word) < 4 and word not in _EXCITED_SHORT:
            continue
        s_start, _ = _sentence_span(mask_code(original, masked), m.start())
        at_sentence_start = not original[s_start:m.start()].strip()
        lowered = word.lower()
        hits.append(RuleHit("caps_enthusiasm", m.start(), m.end(), lowered.capitalize() if at_sentence_start else lowered))
    return hits


def _name_hits(original: str, persona: Persona, masked: list[tuple[int, int]]) -> list[RuleHit]:
    name = re.escape(persona.user_name)
    found = [m for m in re.finditer(rf"(?<![\w-]){name}(?![\w-])", original, re.IGNORECASE) if not _in(masked, m.start())]
    hits = []
    for m in found[persona.max_name_mentions:]:
        start, end = m.span()
        tail = original[end:end + 3]
        head = original[:start]
        sentence_start = not head.strip() or bool(re.search(r"[.!?\n]\s*$", head))
        if tail.startswith(("'s", "’s")):
            hits.append(RuleHit("name_overuse", start, end + 2, "Your" if sentence_start else "your"))
        elif not sentence_start and original[end:end + 1] == "," and head.endswith(" "):  # "Honestly CJ, it's..."
            hits.append(RuleHit("name_overuse", start - 1, end, ""))
        elif re.search(r",\s*$", head) and re.match(r"\s*[.!?,;:]", original[end:] or "."):  # "..., CJ." vocative
            comma = head.rstrip().rfind(",")
            hits.append(RuleHit("name_overuse", comma, end, ""))
        elif sentence_start and re.match(r",\s*", original[end:]):  # "CJ, you..."
            lead = re.match(r",\s*", original[end:])
            assert lead is not None
            nxt = end + lead.end()
            hits.append(RuleHit("name_overuse", start, nxt + 1, original[nxt:nxt + 1].upper()))
        else:
            hits.append(RuleHit("name_overuse", start, end, "you"))
    return hits


def detect(original: str, persona: Persona) -> list[RuleHit]:
    """Every absolute-prohibition hit in ``original``, sorted by position (code is never inspected)."""
    masked = code_spans(original)
    hits = (_coffee_hits(original, persona, masked) + _asterisk_hits(original, masked)
            + _exclamation_hits(original, persona, masked) + _caps_hits(original, persona, masked)
            + _name_hits(original, persona, masked))
    return sorted(hits, key=lambda h: (h.start, h.end))


def _tidy(text: str, masked: list[tuple[int, int]]) -> str:
    """Collapse doubled spaces and space-before-punctuation left by deletions, outside code only."""
    out, last = [], 0
    for a, b in [*masked, (len(text), len(text))]:
        prose = text[last:a]
        prose = re.sub(r"[ \t]{2,}", " ", prose)
        prose = re.sub(r" +([.,!?;:])", r"\1", prose)
        prose = re.sub(r"\n[ \t]+\n", "\n\n", prose)
        out.append(prose)
        out.append(text[a:b])
        last = b
    return "".join(out).strip() if not masked else "".join(out)


def _apply(original: str, hits: list[RuleHit]) -> tuple[str, list[Change]]:
    text, changes, cursor = original, [], len(original) + 1
    for hit in sorted(hits, key=lambda h: (h.start, h.end), reverse=True):
        if hit.end > cursor:  # overlaps an edit already made to its right (e.g. a dropped sentence)
            continue
        changes.append(Change(hit.rule, hit.start, hit.end, original[hit.start:hit.end], hit.replacement))
        text = text[: hit.start] + hit.replacement + text[hit.end:]
        cursor = hit.start
    return text, sorted(changes, key=lambda c: c.start)


def fix(original: str, persona: Persona, max_rounds: int = 4) -> tuple[str, tuple[Change, ...]]:
    """Apply the deterministic fixes until ``detect`` finds nothing (a fix can expose another hit).

    ``changes`` from the first round index ``original``; later rounds (rare) index the text they edited.
    """
    text, changes = original, []
    for _ in range(max_rounds):
        hits = detect(text, persona)
        if not hits:
            break
        text, round_changes = _apply(text, hits)
        text = _tidy(text, code_spans(text))
        changes += round_changes
    if not text.strip() and original.strip():
        text = "Noted."
    return text, tuple(changes)
