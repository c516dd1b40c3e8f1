"""``name_overuse``: the user's name (or a nickname) said more than ``max_name_mentions`` times.

What counts as the name (read on the normalized view, so full-width letters, zero-width characters and
lookalike letters inside it do not hide it):

- initials (a name of 2–4 capital letters, or written with dots: ``CJ``, ``C.J.``): any case and any
  dotting or spacing between the letters: ``CJ``, ``cj``, ``Cj``, ``C.J.``, ``C. J.``, ``C J``;
- any other name, and every entry of ``nicknames``: case-insensitive, with a space or hyphen between its
  parts optional (``Mary Jane``, ``Mary-Jane``, ``MaryJane``). A name that is also an English word (Will,
  Grace, May, ...) only counts capitalised, and at the start of a sentence only as an address (``Will,``);
- never inside a word, an e-mail address, a path or a handle (``cj@x.com``, ``/cj/``, ``@cj``, ``CJ_dir``).

A namesake is someone else with the name; namesakes never count:

- the name followed by a capitalised word that is not part of the user's own name and not a sentence
  word (pronoun, article, greeting...): ``CJ Stroud threw for 300 yards``, ``C.J. Cregg's briefing``;
- the name after a title, a role or a naming word: ``Mr. CJ``, ``Coach CJ``, ``a character named CJ``,
  ``the CJ in that show``.

Everything else is the user, whether addressed (``CJ,`` at the start, ``..., CJ.`` at the end, ``Hey CJ!``)
or spoken of (``CJ's code``). Not caught: a namesake with no surname or title (``CJ threw for 300 yards``
counts as the user), and a name split by other letters or punctuation than dots and spaces.

Mentions are counted in order; the first ``max_name_mentions`` stay. Fix for each one past the limit: an
address is dropped with its comma (``Keep going, CJ.`` → ``Keep going.``, ``CJ, you nailed it`` → ``You
nailed it``, ``And CJ, take a break`` → ``And take a break``, ``Okay CJ, go`` → ``Okay, go``, ``Nice work
CJ!`` → ``Nice work!``), a possessive becomes ``your``, any other mention ``you`` (``send it to CJ`` →
``send it to you``, ``CJ is right`` → ``You are right``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from penny_slm.config import Persona
from penny_slm.rules.view import RuleHit, TextView

_WORD_NAMES = frozenset(
    "will bill mark max may june april august grace hope faith joy rose jack pat sue art ray dawn rich frank drew gene "
    "chase hunter summer amber ruby jade crystal sky rob bob don sandy rusty penny holly iris ivy lily daisy violet "
    "heather autumn storm river brook reed wade dean earl grant miles lance chip buck hank victor sterling".split())
_NOT_SURNAMES = frozenset(
    "i i'm i've i'd i'll you you're you've you'd you'll your yours we we're they they're he she it it's its this that "
    "these those the a an and but or so if when while here there what how why where who which let let's just thanks "
    "thank please okay ok yes no yeah nope hey hi hello sure now today tomorrow good great nice well also then because "
    "since as for with without don't do does did can could would should will is are was were have has had my our "
    "their his her one two both all any every some not never always maybe perhaps honestly seriously still again "
    "next first last note remember look listen see try keep go stop start take make use run check".split())
_TITLES = frozenset(
    "mr mrs ms miss mx dr prof sir madam coach officer agent detective captain sergeant uncle aunt auntie cousin "
    "grandpa grandma named called nicknamed dubbed character player rapper quarterback qb singer actor actress "
    "author the a an another every".split())
_GOVERNS = frozenset(
    "to for with from about at by of on in into onto like than tell told ask asked call called email text message "
    "remind help helps let make made give gave show showed and or behind without beside against toward towards "
    "is was".split())
"""A name after one of these words is an object ("send it to CJ."), not an address ("Nice work CJ.")."""
_AGREE = {"is": "are", "was": "were", "has": "have", "does": "do", "isn't": "aren't", "wasn't": "weren't",
          "hasn't": "haven't", "doesn't": "don't", "is't": "are"}
_VERB = re.compile(r" (is|was|has|does|isn't|wasn't|hasn't|doesn't|isn’t|wasn’t|hasn’t|doesn’t)\b")
_SURNAME = re.compile(r"\.?[ \t]+((?:O['’])?[A-Z][a-z][A-Za-z'’]*)")


def _variant(name: str) -> str:
    letters = re.sub(r"[.\s]", "", name)
    if re.fullmatch(r"[A-Z]{2,4}", letters) and re.fullmatch(r"[A-Z.\s]+", name):
        # initials: C.J., C. J., C J, cj ... (the last letter's dot is read as the sentence's, see _fix)
        return r"(?i:" + r"(?:\.[ \t]?|[ \t])?".join(map(re.escape, letters)) + r")"
    name = name.strip()
    if name.lower() in _WORD_NAMES:  # capitalised only: "Will," is the name, "will" the verb
        return re.escape(name[0].upper()) + r"(?i:" + re.escape(name[1:]) + r")"
    return r"(?i:" + r"[ \t-]?".join(re.escape(p) for p in re.split(r"[\s-]+", name)) + r")"


@lru_cache(maxsize=16)
def name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for the user's name and nicknames, longest first, with the boundaries described above."""
    variants = sorted({_variant(n) for n in names if n.strip()}, key=len, reverse=True)
    return re.compile(r"(?<![\w@/#.\\-])(?:" + "|".join(variants) + r")(?![\w@/\\-]|\.\w)")


def _is_word_name(persona: Persona, matched: str) -> bool:
    return any(n.lower() in _WORD_NAMES and n.lower() == matched.lower() for n in (persona.user_name, *persona.nicknames))


def _own_parts(persona: Persona) -> frozenset[str]:
    return frozenset(p.lower() for n in (persona.user_name, *persona.nicknames) for p in re.split(r"[\s.-]+", n) if p)


def _namesake(view: TextView, start: int, end: int, own: frozenset[str]) -> bool:
    t = view.text
    dotted = "." in t[start:end]
    nxt = _SURNAME.match(t, end)
    if nxt and (dotted or not t[end:nxt.start(1)].startswith(".")):
        word = re.sub(r"['’]s$", "", nxt.group(1)).lower()
        if word not in _NOT_SURNAMES and word not in own:
            return True
    before = re.search(r"([A-Za-z]+)\.?[ \t]+$", t[max(0, start - 24):start])
    return bool(before and before.group(1).lower() in _TITLES)


def _mentions(view: TextView, persona: Persona) -> list[tuple[int, int]]:
    t = view.text
    own = _own_parts(persona)
    out = []
    for m in name_pattern((persona.user_name, *persona.nicknames)).finditer(t):
        start, end = m.span()
        if _namesake(view, start, end, own):
            continue
        if _is_word_name(persona, m.group()) and view.starts_sentence(start) and t[end:end + 1] != ",":
            continue  # "Will this work?": the word, not the name
        out.append((start, end))
    return out


def name_hits(view: TextView, persona: Persona) -> list[RuleHit]:
    """One hit per mention of the user past ``max_name_mentions`` (namesakes do not count)."""
    mentions = _mentions(view, persona)
    return [_fix(view, start, end) for start, end in mentions[persona.max_name_mentions:]]


def _fix(view: TextView, start: int, end: int) -> RuleHit:
    t = view.text
    if t[end:end + 1] == "." and "." in t[start:end] and re.match(r"\.[ \t]+[a-z]|\.[,'’]", t[end:end + 3]):
        end += 1  # "C.J. said": the last dot is the name's
    sentence_start = view.starts_sentence(start)
    head = t[max(view.sentence(start)[0], start - 80):start]
    after = t[end:end + 80]

    def hit(a: int, b: int, replacement: str) -> RuleHit:
        oa, ob = view.span(a, b)
        return RuleHit("name_overuse", oa, ob, replacement)

    if after[:2] in ("'s", "’s", "'S"):
        return hit(start, end + 2, "Your" if sentence_start else "your")
    lead = re.match(r",[ \t]*", after)
    if sentence_start and lead:  # "CJ, you nailed it" → "You nailed it"
        nxt = end + lead.end()
        if nxt < len(t) and t[nxt].isalpha():
            return hit(start, nxt + 1, t[nxt].upper())
        return hit(start, nxt, "")
    conj = re.search(r"(?:^|[ \t])(and|but|so|now|also|okay|ok|oh|then|look|listen|please)[ \t]+$", head, re.I)
    if lead and conj and view.starts_sentence(start - len(conj.group()) + (1 if conj.group()[0] in " \t" else 0)):
        if conj.group(1).lower() in ("and", "but", "so", "then"):
            return hit(start - 1, end + lead.end() - 1, "")  # "And CJ, take a break" → "And take a break"
        return hit(start - 1, end + 1, ",")  # "Okay CJ, go" → "Okay, go"
    if sentence_start and re.match(r"[!.][ \t]+[A-Z]", after):  # "CJ! The test passes" → "The test passes"
        gap = re.match(r"[!.][ \t]+", after)
        assert gap is not None
        return hit(start, end + gap.end(), "")
    closes = re.match(r"[ \t]*(?:[.!?,;:)]|\n|$)", after) is not None
    comma = re.search(r"[ \t]*[,—–][ \t]*$", head)
    if comma and closes:  # "Keep going, CJ." → "Keep going."
        return hit(start - len(comma.group()), end, "")
    word_before = re.search(r"([A-Za-z']+)[ \t]+$", head)
    if word_before and closes and word_before.group(1).lower() not in _GOVERNS:  # "Honestly CJ, it's" → "Honestly, it's"
        return hit(start - (len(word_before.group()) - len(word_before.group(1))), end, "")
    verb = _VERB.match(after)
    you = "You" if sentence_start else "you"
    if verb:  # "CJ is right" → "You are right"
        return hit(start, end + verb.end(), f"{you} {_AGREE[verb.group(1).replace('’', chr(39))]}")
    return hit(start, end, you)
