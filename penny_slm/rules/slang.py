"""Slang detection by lexicon: which terms of a message are slang, where they are, and what they mean.

The convention (docs/DATA.md, "Slang convention"), applied to lexicon entries and predictions alike:

- **Not slang:** contractions of the gonna/wanna kind (gonna, wanna, gotta, kinda, ain't, y'all ...),
  interjections (yeah, okay, ok, lol, omg, wow, ugh ...), swearing, and ordinary informal words (kid, kids,
  guy, stuff, cool, awesome ...). :data:`NOT_SLANG` lists them; a lexicon entry among them is dropped.
- **Ambiguous terms** that are also ordinary English words (fire, lit, tea, cap, bet, cook, ate, dead ...)
  never count by string match alone: each needs one of its context patterns (:data:`CONTEXT_RULES`: "no cap",
  "that's fire", "spill the tea" ...); one without a rule is left out of the lexicon.
- Matching is case-insensitive on word boundaries; multi-word terms win over the words inside them.

The lexicon is :data:`PENNY_SLANG` (hand-written for Penny's chat register: the terms and glosses are this
project's own words) merged with the cspell-dicts slang dictionary (MIT, ``cspell-en-slang`` in the data
manifest) when ``penny-slm data fetch`` has cached it. Confidence: 0.9 for an unambiguous term, 0.7 for an
ambiguous one whose context pattern matched.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from penny_slm.results import SlangSpan

CSPELL_SOURCE = "cspell-en-slang"
CSPELL_PATH = "dictionaries/en-slang/src/en-slang.txt"
CSPELL_COMMIT = "9d27f8ebb36ef052c466d18282fa39dd8a7be7fc"
CSPELL_SHA256 = "90bef7ed3e8c0e831da2f69e2853e11e7093ea5d32f6559e921b85516321db2e"
SLANG_PREFIX = "slang:"
"""A ``PreferenceUpdate`` key for a slang term (``pipeline/controls.py`` reads the same prefix)."""
CLEAR_CONFIDENCE = 0.9
CONTEXT_CONFIDENCE = 0.7

PENNY_SLANG: dict[str, str] = {
    "bussin": "very good (food)", "bussin'": "very good (food)", "no cap": "no lie, honestly",
    "lowkey": "somewhat, quietly", "low-key": "somewhat, quietly", "highkey": "openly, very",
    "high-key": "openly, very", "fr": "for real", "ngl": "not gonna lie", "tbh": "to be honest",
    "smh": "shaking my head", "rizz": "charm", "delulu": "delusional", "sus": "suspicious",
    "bruh": "expression of disbelief", "fam": "close friends", "salty": "bitter, annoyed",
    "slay": "do very well", "slaps": "is very good", "vibe check": "a check of the mood",
    "mid": "mediocre", "goated": "the best", "yeet": "throw hard; exclamation", "finna": "about to",
    "iykyk": "if you know, you know", "fomo": "fear of missing out", "hangry": "angry from hunger",
    "periodt": "end of discussion", "cheugy": "out of style", "simp": "someone overly devoted",
    "ghosted": "stopped replying without a word", "situationship": "undefined romantic relationship",
    "touch grass": "go outside, get offline", "main character": "acting as the centre of the story",
    "it's giving": "it has the vibe of", "rent free": "constantly on one's mind", "bestie": "best friend",
}
"""Hand-written lexicon (this project's own glosses) for Penny's chat register."""

NOT_SLANG: frozenset[str] = frozenset("""
gonna wanna gotta kinda sorta lemme gimme dunno ain't aint y'all yall ya tryna outta lotta
yeah yea yep yup nope nah okay ok k lol lmao lmfao rofl omg wow ugh oh ah uh um hmm haha hehe yay oops
damn dammit hell shit fuck fucking crap ass bitch wtf bomboclaat ligma gooning
kid kids guy guys stuff cool awesome dude buddy folks mom dad
eli5
""".split())
"""The convention's exclusions: contractions, interjections, swearing, ordinary informal words."""

CONTEXT_RULES: dict[str, str] = {
    "cap": r"\b(?:that's|thats|that is|is|no|big|straight)\s+cap\b|\bcap\b(?=\s*[.!?]*\s*$)",
    "fire": r"\b(?:is|was|so|straight|pure|lowkey|low-key|kinda)\s+fire\b",
    "lit": r"\b(?:is|was|so|gonna be|get)\s+lit\b",
    "tea": r"\bspill(?:ed|ing)?\s+the\s+tea\b|\bthe\s+tea\s+is\b",
    "bet": r"^\s*bet\b|\bbet[.!]*\s*$",
    "ate": r"\b(?:she|he|they|you|u|we)\s+ate\s+(?:that|this)\s*(?:[.!,]|$)|\bate\s+and\s+left\s+no\s+crumbs\b",
    "cook": r"\blet\s+(?:him|her|them|me)\s+cook\b",
    "dead": r"\b(?:i'm|im|i am)\s+(?:literally\s+)?dead\b(?!\s+(?:tired|serious|set|wrong))",
    "basic": r"\b(?:so|very|kinda|super)\s+basic\b",
    "extra": r"\b(?:so|being|super|way)\s+extra\b",
    "mood": r"^\s*mood[.!]*\s*$|\bbig\s+mood\b",
    "flex": r"\bweird\s+flex\b|\b(?:flexing|flexin)\b",
    "ghost": r"\bghost(?:ed|ing)\s+(?:me|him|her|them|us)\b",
    "salty": r"\b(?:so|kinda|still|being)\s+salty\b",
    "goat": r"\bthe\s+goat\b|\bGOAT\b",
    "l": r"\b(?:an?|big|took\s+an?|take\s+the)\s+l\b",
    "slaps": r"\b(?:this|that|it|song|track|beat)\s+slaps\b",
    "mid": r"\b(?:so|pretty|kinda|lowkey|low-key|mad|is|was|it's|its|that's|thats)\s+mid\b(?!\s*-)",
    "slay": r"\b(?:you|u|she|he|they|we|i)\s+slay\b|\bslay\s*[.!]*\s*$|\bslay\s+(?:the\s+game|queen)\b",
}
"""Ambiguous terms and the context that makes them slang (case-insensitive)."""

_WORD = r"[\w'’-]"


@dataclass(frozen=True, slots=True)
class Lexicon:
    """term (lower case) → gloss ("" when unknown); ``sources`` names where the terms came from."""

    terms: Mapping[str, str]
    sources: tuple[str, ...]


def parse_cspell(text: str) -> dict[str, str]:
    """The cspell dictionary format: one term a line, optional ``# gloss`` (a quoted example after the gloss is
    dropped); ``#`` comment lines are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        term, _, gloss = line.partition("#")
        term = term.strip()
        if not term:
            continue
        gloss = re.split(r'(?<=[.!?])\s+"', gloss.strip(), maxsplit=1)[0].strip()
        out[term.lower()] = gloss
    return out


def _admissible(term: str) -> bool:
    return term not in NOT_SLANG and (term in CONTEXT_RULES or term not in _AMBIGUOUS_WITHOUT_RULE)


_AMBIGUOUS_WITHOUT_RULE = frozenset("""
aesthetic amped aura banger bop brat canceled cash clout cringe curve dayroom demure dip drip dying flop gassed
glaze ick karen moot moots receipts tesseract yunc guap dl fax
""".split()) | {"down low", "bed rot", "catch feelings", "left on read", "let them cook"}
"""cspell entries that are ordinary English words (or phrases) with no context rule, or whose gloss the data
survey found wrong: left out rather than firing on ordinary use."""


def make_lexicon(extra: Mapping[str, str] | None = None, sources: Iterable[str] = ()) -> Lexicon:
    """:data:`PENNY_SLANG` plus ``extra`` (a dictionary's entries), the convention applied to both."""
    terms = {t: g for t, g in (extra or {}).items() if _admissible(t)}
    terms.update({t: g for t, g in PENNY_SLANG.items() if _admissible(t)})
    return Lexicon(terms, ("penny", *sources))


def cspell_file() -> Path | None:
    """The cached cspell dictionary, if ``penny-slm data fetch`` put it in the cache and it matches the pinned hash.
    The pins repeat the manifest entry (a test checks they agree): the run-time path never imports ``training``."""
    configured = os.environ.get("PENNY_SLM_CACHE")
    root = Path(configured).expanduser() if configured else (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "penny-slm")
    path = root / "sources" / CSPELL_SOURCE / CSPELL_COMMIT / CSPELL_PATH
    try:
        return path if hashlib.sha256(path.read_bytes()).hexdigest() == CSPELL_SHA256 else None
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, plus the cspell dictionary when it is cached and verifies."""
    path = cspell_file()
    if path is None:
        return make_lexicon()
    return make_lexicon(parse_cspell(path.read_text(encoding="utf-8")), (CSPELL_SOURCE,))


@functools.lru_cache(maxsize=8)
def term_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive, word-bounded alternation of ``terms``, longest first."""
    alternatives = sorted(terms, key=len, reverse=True)  # longest first: "no cap" before "cap"
    return re.compile(rf"(?<!{_WORD})(?:" + "|".join(re.escape(t) for t in alternatives) + rf")(?!{_WORD})",
                      re.IGNORECASE)


_CONTEXT = {t: re.compile(p, re.IGNORECASE) for t, p in CONTEXT_RULES.items()}


def detect_slang(text: str, lexicon: Lexicon | None = None) -> tuple[SlangSpan, ...]:
    """Slang terms in ``text`` as spans (``text[start:end]`` is the surface form), per the convention above."""
    lex = lexicon or default_lexicon()
    if not lex.terms:
        return ()
    found: list[SlangSpan] = []
    for match in term_pattern(tuple(sorted(lex.terms))).finditer(text):
        term = match.group(0).lower().replace("’", "'")
        rule = _CONTEXT.get(term)
        if rule is not None:
            if not any(m.start() <= match.start() and match.end() <= m.end() for m in rule.finditer(text)):
                continue
            confidence = CONTEXT_CONFIDENCE
        else:
            confidence = CLEAR_CONFIDENCE
        found.append(SlangSpan(term, match.start(), match.end(), confidence, lex.terms.get(term, "")))
    return tuple(found)
