"""Slang detection by lexicon: which terms of a message are slang, where they are, and what they mean.

The convention (docs/DATA.md, "Slang convention"), applied to lexicon entries and predictions alike:

- **Not slang:** contractions of the gonna/wanna kind (gonna, wanna, gotta, kinda, ain't, y'all ...),
  interjections (yeah, okay, ok, lol, omg, wow, ugh ...), swearing, and ordinary informal words (kid, kids,
  guy, stuff, cool, awesome ...). :data:`NOT_SLANG` lists them; a lexicon entry among them is dropped.
- **Ambiguous terms** that are also ordinary English words (fire, lit, tea, cap, bet, cook, drip, aura ...)
  never count by string match alone: each needs one of its context patterns (:data:`CONTEXT_RULES`: "no cap",
  "that's fire", "spill the tea" ...) or **slang company**: another term in the same message that counts on its own
  or by its pattern ("ngl the drip is crazy"; slang comes in clusters, and a message already in that register reads
  "drip" as slang), unless its ordinary sense is plain from the words around it (:data:`ORDINARY_SENSE`: "lit up",
  "I bet", "set fire to"). Company only adds terms to a message that already has slang, so it never turns a message
  without slang into one with slang.
- Matching is case-insensitive on word boundaries; multi-word terms win over the words inside them; a two-word
  term is also found spaced, hyphenated or closed up ("glow up", "glow-up", "glowup"), reported as the lexicon's term.

The lexicon is :data:`PENNY_SLANG` (hand-written for Penny's chat register: the terms and glosses are this
project's own words) merged with the slang dictionaries of the data manifest (:data:`DICTIONARIES`: cspell-dicts'
``cspell-en-slang`` and kaspercools' ``genz-slang``, both MIT) that ``penny-slm data fetch`` has cached.
Confidence: 0.9 for an unambiguous term, 0.7 for an ambiguous one whose context pattern matched, 0.6 for one
counted by its company.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from penny_slm.results import SlangSpan

CSPELL_SOURCE = "cspell-en-slang"
CSPELL_PATH = "dictionaries/en-slang/src/en-slang.txt"
CSPELL_COMMIT = "9d27f8ebb36ef052c466d18282fa39dd8a7be7fc"
CSPELL_SHA256 = "90bef7ed3e8c0e831da2f69e2853e11e7093ea5d32f6559e921b85516321db2e"
GENZ_SOURCE = "genz-slang"
GENZ_PATH = "genz_slang.csv"
GENZ_COMMIT = "2386f1eba0668bfe0788876005e962eb47d71f66"
GENZ_SHA256 = "0c3b8e01945b66f71a27b4e8d2551c68e3b87b7524cfac9559f7ffde0a84593c"
SLANG_PREFIX = "slang:"
"""A ``PreferenceUpdate`` key for a slang term (``pipeline/controls.py`` reads the same prefix)."""
CLEAR_CONFIDENCE = 0.9
CONTEXT_CONFIDENCE = 0.7
COMPANY_CONFIDENCE = 0.6

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
    "bet": r"^\s*bet\s*(?:[.!,]|$)|(?<!\bi\s)(?<!\bi'd\s)(?<!\byou\s)(?<!\bwe\s)(?<!\bbest\s)(?<!\bsafe\s)(?<!\bgood\s)\bbet[.!]*\s*$",
    "it's giving": r"\bit'?s\s+giving\b(?!\s+(?:me|you|him|her|us|them|it|a|an|the|off|up|away|back|out|in)\b)",
    "ate": r"\b(?:she|he|they|you|u|we)\s+ate\s+(?:that|this)\s*(?:[.!,]|$)|\bate\s+and\s+left\s+no\s+crumbs\b",
    "cook": r"\blet\s+(?:him|her|them|me)\s+cook\b",
    "dead": r"\b(?:i'm|im|i am)\s+(?:literally\s+)?dead\b(?!\s+(?:tired|serious|set|wrong))",
    "basic": r"\b(?:so|very|kinda|super)\s+basic\b",
    "extra": r"\b(?:so|being|super|way)\s+extra\b",
    "mood": r"^\s*mood[.!]*\s*$|\bbig\s+mood\b",
    "flex": r"\bweird\s+flex\b|\b(?:flexing|flexin)\b",
    "ghost": r"\bghost(?:ed|ing)\s+(?:me|him|her|them|us)\b",
    "salty": r"\b(?:so|kinda|still|being)\s+salty\b",
    "goat": r"\bthe\s+goat\b(?!\s+(?:cheese|milk|farm|herd|pen|track))|(?-i:\bGOAT\b)",
    "l": r"\b(?:an?|big|took\s+an?|take\s+the)\s+l\b",
    "slaps": r"\b(?:this|that|it|song|track|beat)\s+slaps\b",
    "mid": r"\b(?:so|pretty|kinda|lowkey|low-key|mad|is|was|it's|its|that's|thats)\s+mid\b(?!\s*-)",
    "i can't even": r"\bi\s+can'?t\s+even\b(?=\s*(?:[.!?,]|$|rn\b|lol\b|with\b|right\s+now\b))",
    "slay": r"\b(?:you|u|she|he|they|we|i)\s+slay\b|\bslay\s*[.!]*\s*$|\bslay\s+(?:the\s+game|queen)\b",
}
"""Ambiguous terms and the context that makes them slang (case-insensitive)."""

_WORD = r"[\w'’\-\u00ad\u200b-\u200d]"
"""What continues a word: letters, apostrophes, hyphens, and the invisible soft hyphen and zero-width characters
(so "ily" is not found inside a soft-hyphenated "fam\u00adily")."""


@dataclass(frozen=True, slots=True)
class Lexicon:
    """term (lower case) → gloss ("" when unknown); ``sources`` names where the terms came from; ``spellings`` maps
    another spelling of a two-word term to the term (:func:`spellings`)."""

    terms: Mapping[str, str]
    sources: tuple[str, ...]
    spellings: Mapping[str, str] = dataclasses.field(default_factory=dict)


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
    return term not in NOT_SLANG and term not in _NEVER


AMBIGUOUS = frozenset("""
aesthetic amped aura banger bop brat canceled cash clout cringe curve demure dip drip dying flop gassed
glaze ick moot moots receipts guap dl fax
woke stan snatched snack sis based facts ratio valid wig af clapped clown shade shook thirsty sturdy boomer
finesse ghosting gagged gucci dank benching cuffing
""".split()) | {"down low", "bed rot", "catch feelings", "left on read", "let them cook", "sip tea", "sending me",
               "low key", "sleeping on", "on god", "i'm weak"} | frozenset(CONTEXT_RULES)
"""Lexicon terms that are also ordinary English words (or phrases): each counts only by its context pattern
(:data:`CONTEXT_RULES`) or in slang company (module docstring)."""

_NEVER = frozenset({"tesseract", "yunc", "dayroom", "karen", "heather", "chad", "w", "ion", "asl", "word", "not you",
                    "smash", "camp", "drag", "body count", "cancel culture", "gaslighting", "ffs", "wth", "@ me",
                    "l+ratio", "t's giving…", "rent-free"})
"""Dictionary entries left out: glossed wrongly in cspell (tesseract, yunc, dayroom); names (karen, heather, chad);
words too common to read as slang even in company (word, not you, smash, camp, drag, ion, w, asl); terms now
ordinary English (gaslighting, body count, cancel culture); swearing and interjections (ffs, wth); and the genz-slang
list's malformed entries ("@ me", "l+ratio", "t's giving…"; "it's giving" is in :data:`PENNY_SLANG`); and "rent-free",
the ordinary adjective, as a spelling of "rent free".
Read term by term on 2026-12-06 (docs/DATA.md, "Slang dictionaries")."""

ORDINARY_SENSE: dict[str, str] = {
    "lit": r"\blit\s+(?:up|by|the|a|an|his|her|my|their|our|its|candles?|cigarettes?|fires?)\b"
           r"|\b(?:dimly|well|brightly|poorly|sun|moon|candle)[\s-]+lit\b",
    "fire": r"\b(?:set|caught|catch|catches|open|opened|cease|camp|bon|forest|wild|house)[\s-]*fire\b"
            r"|\bfire\s+(?:alarms?|fighters?|trucks?|departments?|places?|exits?|drills?|extinguishers?|hazards?|the|him|her|them)\b",
    "bet": r"\b(?:i|you|i'd|i'll|best|a|the|to|safe|good|your|my)\s+bet\b|\bbet\s+(?:on|that|you|it|against|money)\b",
    "cap": r"\b(?:a|the|caps?\s+lock|bottle|knee|ice|market|salary|spending|price)\s+cap\b|\bcap\s+(?:on|of|at)\b",
    "tea": r"\b(?:cup|cups|pot|glass)\s+of\s+tea\b|\b(?:green|black|iced|herbal|hot|sweet)\s+tea\b",
    "cook": r"\bcook\s+(?:the|a|an|some|dinner|lunch|breakfast|for|it|them|rice|pasta|until|on|in)\b",
}
"""Words around an ambiguous term that show its ordinary sense: such a use never counts by company."""

PATTERN_ONLY = frozenset({"l", "dead", "ate", "mood", "basic", "dying", "dip", "cash", "curve", "canceled", "i can't even"})
"""Ambiguous terms whose ordinary sense is so common (or, for "l", so short) that they count by their context pattern
only, never by company: on GoEmotions' training rows, company read "red dead", "dead on", "I ate here" and a spaced
"D U A L" as slang."""


def spellings(term: str) -> tuple[str, ...]:
    """The other ways a two-word term is written: spaced, hyphenated and closed ("brain rot", "brain-rot",
    "brainrot"; "glow-up", "glow up", "glowup")."""
    parts = re.split(r"[ -]", term)
    if len(parts) != 2 or not all(p.isalnum() for p in parts) or parts[1] in ("ing", "ed", "er"):
        return ()  # "i'm weak" and "zombie-ing" have no other spelling
    forms = ("".join(parts),) if min(map(len, parts)) < 2 else (" ".join(parts), "-".join(parts), "".join(parts))
    return tuple(v for v in forms if v != term)


def make_lexicon(extra: Mapping[str, str] | None = None, sources: Iterable[str] = ()) -> Lexicon:
    """:data:`PENNY_SLANG` plus ``extra`` (a dictionary's entries), the convention applied to both; each two-word
    term also under its other spellings, unless one of them is an entry of its own."""
    terms = {t: g for t, g in (extra or {}).items() if _admissible(t)}
    terms.update({t: g for t, g in PENNY_SLANG.items() if _admissible(t)})
    variants = {v: t for t in sorted(terms) for v in spellings(t) if v not in terms and _admissible(v)}
    return Lexicon({**terms, **{v: terms[t] for v, t in variants.items()}}, ("penny", *sources), variants)


def parse_genz_csv(text: str) -> dict[str, str]:
    """The genz-slang list: a ``keyword,description`` CSV; the description is the gloss."""
    return {row["keyword"].strip().lower().replace("’", "'"): row["description"].strip()
            for row in csv.DictReader(io.StringIO(text)) if row.get("keyword", "").strip()}


@dataclass(frozen=True, slots=True)
class Dictionary:
    """A slang dictionary of the data manifest: where ``data fetch`` caches it, its pinned hash, how to read it. The
    pins repeat the manifest entry (a test checks they agree): the run-time path never imports ``training``."""

    source: str
    commit: str
    path: str
    sha256: str
    parse: Callable[[str], dict[str, str]]


DICTIONARIES = (Dictionary(CSPELL_SOURCE, CSPELL_COMMIT, CSPELL_PATH, CSPELL_SHA256, parse_cspell),
                Dictionary(GENZ_SOURCE, GENZ_COMMIT, GENZ_PATH, GENZ_SHA256, parse_genz_csv))


def cached_file(dictionary: Dictionary) -> Path | None:
    """The dictionary's cached file, if ``penny-slm data fetch`` put it in the cache and it matches the pinned hash."""
    configured = os.environ.get("PENNY_SLM_CACHE")
    root = Path(configured).expanduser() if configured else (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "penny-slm")
    path = root / "sources" / dictionary.source / dictionary.commit / dictionary.path
    try:
        return path if hashlib.sha256(path.read_bytes()).hexdigest() == dictionary.sha256 else None
    except OSError:
        return None


def cached_dictionaries() -> list[tuple[str, dict[str, str]]]:
    """(source, term → gloss) of each dictionary that is cached and verifies, in :data:`DICTIONARIES` order."""
    return [(d.source, d.parse(path.read_text(encoding="utf-8")))
            for d in DICTIONARIES if (path := cached_file(d)) is not None]


def merged_dictionaries(leave_out: str | None = None) -> tuple[dict[str, str], tuple[str, ...]]:
    """Every cached dictionary's entries in one map (an earlier dictionary's gloss wins) and their sources;
    ``leave_out`` names a source not to merge (to see what one dictionary adds)."""
    found = [(source, entries) for source, entries in cached_dictionaries() if source != leave_out]
    merged: dict[str, str] = {}
    for _, entries in reversed(found):
        merged.update(entries)
    return merged, tuple(source for source, _ in found)


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, plus every slang dictionary that is cached and verifies."""
    return make_lexicon(*merged_dictionaries())


@functools.lru_cache(maxsize=8)
def term_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive, word-bounded alternation of ``terms``, longest first."""
    alternatives = sorted(terms, key=len, reverse=True)  # longest first: "no cap" before "cap"
    return re.compile(rf"(?<!{_WORD})(?:" + "|".join(re.escape(t) for t in alternatives) + rf")(?!{_WORD})",
                      re.IGNORECASE)


_CONTEXT = {t: re.compile(p, re.IGNORECASE) for t, p in CONTEXT_RULES.items()}
_ORDINARY = {t: re.compile(p, re.IGNORECASE) for t, p in ORDINARY_SENSE.items()}


def _within(rule: re.Pattern[str] | None, text: str, match: re.Match[str]) -> bool:
    """True if a match of ``rule`` covers ``match``."""
    return rule is not None and any(m.start() <= match.start() and match.end() <= m.end() for m in rule.finditer(text))


def detect_slang(text: str, lexicon: Lexicon | None = None) -> tuple[SlangSpan, ...]:
    """Slang terms in ``text`` as spans (``text[start:end]`` is the surface form), per the convention above."""
    lex = lexicon or default_lexicon()
    if not lex.terms:
        return ()
    found: list[SlangSpan] = []
    waiting: list[SlangSpan] = []  # ambiguous terms whose pattern did not match: they count in slang company
    for match in term_pattern(tuple(sorted(lex.terms))).finditer(text):
        written = match.group(0).lower().replace("’", "'")
        term = lex.spellings.get(written, written)
        span = SlangSpan(term, match.start(), match.end(), CLEAR_CONFIDENCE, lex.terms.get(term, ""))
        if term not in AMBIGUOUS:
            found.append(span)
        elif _within(_CONTEXT.get(term), text, match):
            found.append(dataclasses.replace(span, confidence=CONTEXT_CONFIDENCE))
        elif term not in PATTERN_ONLY and not _within(_ORDINARY.get(term), text, match):
            waiting.append(dataclasses.replace(span, confidence=COMPANY_CONFIDENCE))
    if found and waiting:
        found = sorted([*found, *waiting], key=lambda s: s.start)
    return tuple(found)
