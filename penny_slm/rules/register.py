"""Formality and technical depth of one message from surface features: the context tracker's estimate until its
regression heads exist, and the baseline they will have to beat.

Formality (0 casual – 1 formal) follows the label rule the data survey set for the formality sources: a neutral prior of
0.6, -0.06 per informal marker present (contraction, gonna/wanna, interjection, "!!"/"?!", emoji or emoticon,
slang hit, lowercase start, no terminal punctuation, an ALL-CAPS word, text-speak such as "u"/"ur"), at most
-0.45; +0.05 for a mean word length of 5.2 or more, +0.05 for two or more nominalisations, +0.05 for a
politeness formula ("could you", "would you", "please", "kindly", "regarding"), +0.03 for 20 or more words;
clipped to [0.02, 0.98].

Technical depth (0 – 1) counts technical evidence per word: terms of art from :data:`TECH_TERMS`, code-like
tokens (``snake_case``, ``camelCase``, ``f(x)``, ``a.b``), acronyms of two or more capitals, numbers with units,
and long words; ``0.1 + 2.2 · density``, clipped to [0.02, 0.98]. A plain question about everyday life scores
about 0.1; an expert's question full of terms of art 0.6 and above.
"""

from __future__ import annotations

import re

from penny_slm.rules.slang import detect_slang

_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_CONTRACTION = re.compile(r"\b\w+(?:'|’)(?:s|re|ve|ll|d|m|t)\b|\b(?:gonna|wanna|gotta|kinda|dunno|lemme|gimme|ain't|y'all)\b",
                          re.IGNORECASE)
_INTERJECTION = re.compile(r"\b(?:lol|lmao|omg|yeah|yep|nope|nah|ok|okay|wow|oh|ugh|haha|hehe|hmm|yay|oops|wtf)\b",
                           re.IGNORECASE)
_TEXTSPEAK = re.compile(r"\b(?:u|ur|r|pls|plz|thx|idk|imo|btw|rn|tbh|ngl|fr)\b", re.IGNORECASE)
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|[:;]-?[)(DPp]|<3")
_NOMINAL = re.compile(r"\b\w{4,}(?:tion|sion|ment|ness|ity|ance|ence)s?\b", re.IGNORECASE)
_POLITE = re.compile(r"\b(?:could you|would you|please|kindly|regarding|i would appreciate|i should be grateful|dear)\b",
                     re.IGNORECASE)

TECH_TERMS = frozenset("""
algorithm api async asynchronous await bandwidth benchmark binary bytecode cache compiler complexity concurrency
container covariance database deadlock dependency deploy deterministic derivative eigenvalue encoder encryption
endpoint entropy function gradient hash heap hypothesis inference integral interface kernel latency linear
matrix memory mutex namespace neural optimizer parameter parser pointer polynomial protocol query recursion
regression runtime scheduler schema semaphore serialization socket stochastic syntax thread throughput tensor
token transaction variance vector voltage quantum enzyme protein genome mitochondria receptor molecule isotope
catalyst oxidation pharmacokinetics dosage statistical bayesian posterior prior likelihood coefficient
amortization derivative liquidity equity arbitrage jurisdiction statute tort plaintiff precedent
idempotent idempotency quantization quantize fine-tune fine-tuning backpropagation transformer attention
embedding lock index indices sql postgres postgresql kubernetes docker compile inversion heuristic
""".split())
"""Terms of art across common expert domains (software, maths, science, finance, law); lower case."""

_CODE = re.compile(r"\b\w+_\w+\b|\b[a-z]+[A-Z]\w*\b|\b\w+\(\)?|\b\w+\.\w+\b|`[^`]+`")
_ACRONYM = re.compile(r"\b[A-Z]{2,}s?\b")
_UNIT = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|kb|mb|gb|tb|ghz|mhz|hz|nm|mg|ml|kg|km|cm|mm|v|w|kw|%)\b", re.IGNORECASE)


def informal_markers(text: str) -> list[str]:
    """The informal markers present in ``text`` (each counted once)."""
    stripped = text.strip()
    checks = {
        "contraction": bool(_CONTRACTION.search(text)),
        "interjection": bool(_INTERJECTION.search(text)),
        "textspeak": bool(_TEXTSPEAK.search(text)),
        "repeated_punctuation": bool(re.search(r"!!|\?!|!\?|\?\?", text)),
        "emoji": bool(_EMOJI.search(text)),
        "slang": bool(detect_slang(text)),
        "lowercase_start": bool(stripped) and stripped[0].isalpha() and stripped[0].islower(),
        "no_terminal_punctuation": bool(stripped) and stripped[-1] not in ".?!\"')",
        "caps_word": bool(re.search(r"\b[A-Z]{3,}\b", text)) and not _mostly_acronyms(text),
    }
    return [name for name, hit in checks.items() if hit]


def _mostly_acronyms(text: str) -> bool:
    """ALL-CAPS technical acronyms (SQL, HTTP) are not shouting."""
    return all(w.lower() in TECH_TERMS or len(w) <= 4 for w in re.findall(r"\b[A-Z]{3,}\b", text))


def _term(word: str) -> bool:
    """A term of art, plurals and -ed/-ing forms included (deadlocks, threads, compiled)."""
    return word in TECH_TERMS or any(word.endswith(end) and word[: -len(end)] in TECH_TERMS for end in ("s", "es", "ed", "d", "ing"))


def formality(text: str) -> float:
    """0 (casual) – 1 (formal), by the rule in the module docstring."""
    words = _WORDS.findall(text)
    if not words:
        return 0.5
    score = 0.6 - min(0.45, 0.06 * len(informal_markers(text)))
    if sum(len(w) for w in words) / len(words) >= 5.2:
        score += 0.05
    if len(_NOMINAL.findall(text)) >= 2:
        score += 0.05
    if _POLITE.search(text):
        score += 0.05
    if len(words) >= 20:
        score += 0.03
    return round(min(0.98, max(0.02, score)), 4)


def technical_depth(text: str) -> float:
    """0 (everyday) – 1 (expert), by the rule in the module docstring."""
    words = _WORDS.findall(text)
    if not words:
        return 0.1
    terms = sum(1 for w in words if _term(w.lower().strip("'’-")))
    evidence = (terms + len(_CODE.findall(text)) + len(_ACRONYM.findall(text)) + len(_UNIT.findall(text))
                + 0.5 * sum(1 for w in words if len(w) >= 11))
    density = evidence / len(words)
    return round(min(0.98, max(0.02, 0.1 + 2.2 * density)), 4)
