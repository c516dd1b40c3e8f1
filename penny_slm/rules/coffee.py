"""``coffee_reference``: Penny never talks about coffee. A lexicon (the persona's ``coffee_reference`` list)
plus sense rules (here), read on the normalized view lower-cased with accents and leetspeak folded, so
``ＣＯＦＦＥＥ``, ``co\u200bffee``, ``соffее`` (Cyrillic), ``c0ffee`` and ``frappé`` are all seen.

A lexicon term is matched as whole words (spaces or hyphens between the words of a phrase). Terms without
a sense rule are always coffee: the drinks (espresso, latte, cappuccino, americano, flat white, cortado,
macchiato, cold brew, frappuccino, iced coffee...), caffeine, decaf, ``cup of joe``, ``bean juice``, ☕.
``coffee`` also matches as the start of a word (coffeehouse, coffeemaker).

Sense rules: the other senses below are never flagged, and the ambiguous words are flagged only with a
context that makes them coffee (``before``/``after`` are the neighbouring words in the same sentence):

- coffee: not CoffeeScript (``coffeescript``, ``coffee-script``), not a ``.coffee`` file, not Intel's Coffee
  Lake, not the furniture (``coffee table``, ``coffee-table book``);
- espresso: not the Android UI-test framework (``Espresso test``, ``espresso-core``, or the sentence names
  Android, onView, instrumentation, JUnit, Gradle...);
- latte: not a tea latte (chai, matcha, turmeric, golden, hojicha). ``latte art`` is coffee, in a design
  discussion too: the simile is still a coffee aside;
- frappe: not the Frappe framework (capitalised, with framework/ERPNext/doctype/bench nearby);
- barista: not a job title in a CV or job discussion (job, resume, CV, role, worked, hired, shift, interview...
  nearby): "worked as a barista for two years" is the user's history, "tip your barista" is an aside;
- java: coffee only as a drink (``hot java``, ``some java``, ``java break``; ``cup of java`` is a lexicon
  phrase), never with a programming word nearby (code, class, JVM, learn, compile, Spring...) or after ``in``;
  Java, JavaScript and JavaBeans are programming;
- joe: only ``cup/mug/pot of joe``, ``cuppa joe`` or lower-case ``joe`` after a drink word (``morning joe``);
  Joe the person is never coffee;
- mocha: only as a drink (``a mocha``, ``iced mocha``, ``mocha latte``, ``sipping a mocha``), never the
  JavaScript test framework (``Mocha test``, ``run mocha``, with Chai/Jest/npm) or the colour (``mocha brown``);
- brew: only coffee brewing (``morning brew``, ``fresh brew``, ``brew a pot``), never Homebrew (``brew
  install``), beer or tea (home brew, craft brew, brewing kombucha) or ``trouble is brewing``;
- cuppa: coffee unless tea is named with it;
- cup: only the coffee-break cup (``grab a cup``, ``another cup``, ``your morning cup``, ``cup in hand``),
  never a cup of something else (``a cup of tea``, ``a cup of flour``), a measuring cup or the World Cup;
- mug: only a drinking mug being used (``refill your mug``, ``steaming mug``), never to mug someone, a mug
  shot or a mug of something else;
- beans: only roasted/ground/arabica/robusta beans (never spill the beans, baked beans, JavaBeans);
- go-juice: coffee unless fuel, gas, a car or a rocket is nearby.

Not caught: brand names (Starbucks, Nespresso), ``café`` alone (a café is also a restaurant), other idioms
without a lexicon word (``the daily grind``, ``rocket fuel``), and words split by other letters or spaces.

Fix: the sentence holding the term is dropped (a coffee aside), unless it holds code (only the term is
removed) or is the whole response (its coffee noun phrase becomes "a break": "Let's debug this over coffee."
→ "Let's debug this over a break."; an adjective such as "caffeinated" drops the sentence, and an empty
response becomes "Noted."); a ☕ is removed alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from penny_slm.config import Persona
from penny_slm.rules.view import RuleHit, TextView

_LEET: dict[str, str | int | None] = {"0": "o", "3": "e", "4": "a", "1": "i", "@": "a", "$": "s", "ƒ": "f"}
_ACCENTS: dict[str, str | int | None] = {
    chr(cp): base[0] for cp in range(0xC0, 0x250)
    if len(base := unicodedata.normalize("NFD", chr(cp))) > 1 and base[0].isascii() and base[0].isalpha()
    and all(unicodedata.combining(c) for c in base[1:])
}
_FOLD = str.maketrans({**_ACCENTS, **_LEET})
_UNACCENT = str.maketrans(_ACCENTS)
_WORDS = re.compile(r"[a-z][a-z'’]*")
_NOUN_PHRASE = re.compile(
    r"(?:(?<![\w])(?:a|an|the|some|your|my|another|one)[ \t]+)?(?:(?:hot|iced|fresh|strong|double|quick|small|large|"
    r"morning|warm|cold|steaming|little|big|nice|good|first|second)[ \t]+)*(?:(?:cups?|mugs?|pots?|shots?|sips?)[ \t]+of[ \t]+)?$",
    re.I)
_ADJECTIVE = re.compile(r"(?:ated|ating)\b")
_LETTER = re.compile(r"[^\W\d_]")


def lower_same_length(text: str) -> str:
    """``text.lower()``, except characters whose lower case is longer (İ) stay as they are."""
    low = text.lower()
    return low if len(low) == len(text) else "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def fold(text: str) -> str:
    """Lower case, accents stripped, leetspeak read as letters; same length as ``text``."""
    return lower_same_length(text).translate(_FOLD)


@dataclass(frozen=True, slots=True)
class _Context:
    """The words around a match, in its sentence, as the sense rules read them."""

    low: str  # lower-cased view (accents folded, no leetspeak): context words come from here
    cased: str  # the match as written (view)
    start: int
    end: int
    s_start: int
    s_end: int

    def before(self, n: int) -> list[str]:
        return _WORDS.findall(self.low, max(self.s_start, self.start - 60), self.start)[-n:]

    def after(self, n: int) -> list[str]:
        return _WORDS.findall(self.low, self.end, min(self.s_end, self.end + 60))[:n]

    def near(self, words: frozenset[str]) -> bool:
        window = _WORDS.findall(self.low, max(self.s_start, self.start - 160), min(self.s_end, self.end + 160))
        return not words.isdisjoint(window)

    def glued(self, left: str = "", right: str = "") -> bool:
        """The match touches ``left`` before it or ``right`` after it (no space between)."""
        return (bool(left) and self.low[max(0, self.start - len(left)):self.start] == left) or (
            bool(right) and self.low[self.end:self.end + len(right)] == right)


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_PROG = _set("code coding coder program programming programmer programs class classes jvm jdk jre spring compile compiled "
             "compiler bytecode maven gradle developer developers language languages learn learning eclipse intellij "
             "android kotlin scala servlet applet api sdk library libraries framework syntax method methods interface "
             "thread threads object objects package packages backend server runtime version versions app apps script "
             "scripts source oop oracle openjdk enterprise ee se stack project projects file files javascript python")
_JAVA_NEXT = _PROG | _set("bean beans ii iii 8 11 17 21 island indonesia sea indonesian")
_DRINK_PRE = _set("hot fresh strong black iced morning some more another steaming cold good first second extra "
                  "afternoon decent")
_CONTAINER = _set("cup cups mug mugs pot pots sip sips shot shots cuppa thermos carafe")
_ANDROID = _set("android androidx onview viewmatchers instrumentation junit gradle robolectric uiautomator appium "
                "emulator activity activities composable compose kotlin xcuitest")
_ESPRESSO_NEXT = _set("test tests testing framework library matchers matcher idling recorder intents api core "
                      "dependency assertions assertion")
_TEA_LATTE = _set("chai matcha turmeric golden hojicha fog")
_JOB = _set("job jobs resume résumé cv role roles position worked work working hired hire hiring shift shifts "
            "experience employer manager interview interviews applied apply application career skills skill wage wages "
            "pay part-time full-time coworker coworkers cover letter employment employed promotion")
_MOCHA_PRE = _set("a an one two iced hot white peppermint caramel salted another skinny grande venti tall large small "
                  "double dark frozen vegan oat sip sipping drink drinking order ordered grab grabbed enjoy enjoying my "
                  "your favorite favourite morning afternoon warm")
_MOCHA_NOT_NEXT = _set("test tests testing suite spec specs runner config framework reporter hooks hook file files "
                       "brown color colour colored coloured tone shade paint skin eyes hair leather sofa couch cli "
                       "and js")
_JS_TEST = _set("chai jest jasmine npm sinon describe karma vitest")
_BREW_PRE = _set("morning fresh hot strong first daily cold drip french black favorite favourite afternoon")
_BREW_NOT = _set("tea teas beer beers ale ales lager kombucha homebrew install installed cask casks formula formulae "
                 "package packages macos mac terminal upgrade update potion potions trouble storm brewery breweries craft "
                 "hops malt yeast wort mead cider sake tisane chamomile herbal home plan plot conflict")
_TEA = _set("tea teas cha chamomile earl herbal builder's rooibos")
_CUP_VERBS = _set("grab grabbing get getting pour pouring fix brew brewing make making need needs have having enjoy "
                  "enjoying refill top sip sipping nurse nursing")
_CUP_PRE = _set("another second third fourth fifth morning fresh steaming afternoon daily")
_CUP_DET = _set("a your my the some one")
_PRONOUNS = _set("yourself me us myself ourselves")
_NOT_COFFEE_DRINK = _set("tea teas cocoa chocolate water soup broth cider matcha chai kombucha juice milk wine beer sake "
                         "smoothie lemonade flour sugar rice oats yogurt noodles kindness")
_NOT_CUP = _set("world measuring trophy championship stanley davis ryder final finals tournament bra cupcake holder "
                "holders size sizes america's fa")
_MUG_PRE = _set("steaming favorite favourite morning warm empty")
_MUG_VERBS = _set("refill top fill grab clutch clutching warm sip sipping nurse nursing raise raises raising hold holding "
                  "lift lifts lifting cradle cradling")
_MUG_NOT = _set("shot shots mugged mugging mugger muggers tea cocoa chocolate beer soup printed sublimation design "
                "merch face")
_ROAST = _set("roasted ground freshly arabica robusta whole roast dark-roast light-roast")
_NOT_BEANS = _set("cocoa cacao vanilla green baked kidney pinto soy refried chili spill jelly")
_FUEL = _set("fuel gas gasoline diesel petrol rocket car cars engine engines tank battery batteries")


def _coffee_word(c: _Context) -> bool:
    if c.glued(left=".") or c.cased.lower().startswith("coffeescript") or c.glued(right="-script"):
        return False
    nxt = c.after(1)
    return not (nxt and nxt[0] in ("script", "lake", "table", "tables") and c.low[c.end:c.end + 1] in " -")


def _espresso(c: _Context) -> bool:
    nxt = c.after(1)
    return not ((nxt and nxt[0] in _ESPRESSO_NEXT) or c.near(_ANDROID))


def _latte(c: _Context) -> bool:
    prev = c.before(1)
    return not (prev and prev[0] in _TEA_LATTE)


def _frappe(c: _Context) -> bool:
    return not (c.cased[:1] == "F" and c.near(_set("framework erpnext doctype bench app apps python site sites")))


def _barista(c: _Context) -> bool:
    return not c.near(_JOB)


def _java(c: _Context) -> bool:
    prev, nxt = c.before(2), c.after(1)
    if nxt and nxt[0] in _JAVA_NEXT or c.near(_PROG) or (prev and prev[-1] in ("in", "with", "to", "from", "like")):
        return False
    if len(prev) == 2 and prev[0] in _CONTAINER and prev[1] in ("of", "o"):
        return True
    return bool(prev and prev[-1] in _DRINK_PRE) or bool(nxt and nxt[0] in ("break", "run", "fix", "jolt", "time", "black", "refill"))


def _joe(c: _Context) -> bool:
    prev = c.before(2)
    if len(prev) == 2 and prev[0] in _CONTAINER and prev[1] in ("of", "o"):
        return True
    return c.cased.islower() and bool(prev) and prev[-1] in _DRINK_PRE | {"cuppa", "cup"}


def _mocha(c: _Context) -> bool:
    prev, nxt = c.before(2), c.after(1)
    if (nxt and nxt[0] in _MOCHA_NOT_NEXT) or c.near(_JS_TEST) or c.glued(right=".js"):
        return False
    if nxt and nxt[0] in ("latte", "lattes", "frappuccino", "frappe", "drink", "drinks", "shake"):
        return True
    return bool(prev) and (prev[-1] in _MOCHA_PRE or (prev[-1] == "of" and len(prev) == 2 and prev[0] in _CONTAINER))


def _mochas(c: _Context) -> bool:
    return not c.near(_JS_TEST)


def _brew(c: _Context) -> bool:
    prev, nxt = c.before(1), c.after(3)
    if (nxt and nxt[0] in ("install", "upgrade", "update", "cask", "doctor", "services", "tap", "list", "info",
                           "uninstall", "search", "bundle")) or c.near(_BREW_NOT):
        return False
    vessel = [w for w in nxt if w not in ("a", "another", "some", "the", "your", "my", "us", "yourself")]
    return bool(prev and prev[0] in _BREW_PRE) or bool(vessel and vessel[0] in ("pot", "cup", "mug", "carafe", "batch"))


def _cuppa(c: _Context) -> bool:
    return not c.near(_TEA)


def _cup(c: _Context) -> bool:
    prev, nxt = c.before(4), c.after(2)
    if (prev and prev[-1] in _NOT_CUP) or (nxt and nxt[0] in _NOT_CUP) or c.near(_NOT_COFFEE_DRINK):
        return False
    if nxt and nxt[0] == "of" and not (len(nxt) > 1 and nxt[1] in ("the", "your", "my", "that", "this")):
        return False  # "a cup of X": X decides (a coffee X is flagged as itself)
    if nxt[:2] == ["in", "hand"] or (prev and prev[-1] in _CUP_PRE):
        return True
    if len(prev) >= 2 and prev[-1] in _CUP_DET:
        verb = prev[-3] if prev[-2] in _PRONOUNS and len(prev) >= 3 else prev[-2]
        return verb in _CUP_VERBS
    return False


def _mug(c: _Context) -> bool:
    prev, nxt = c.before(3), c.after(2)
    if (nxt and nxt[0] in _MUG_NOT) or c.near(_MUG_NOT) or (nxt and nxt[0] == "of"):
        return False
    if prev and prev[-1] in _MUG_PRE:
        return True
    return len(prev) >= 2 and prev[-1] in _CUP_DET and prev[-2] in _MUG_VERBS | {"from"}


def _beans(c: _Context) -> bool:
    prev = c.before(1)
    return bool(prev and prev[0] in _ROAST) and not c.near(_NOT_BEANS)


def _go_juice(c: _Context) -> bool:
    return not c.near(_FUEL)


SENSES: dict[str, Callable[[_Context], bool]] = {
    "coffee": _coffee_word, "espresso": _espresso, "espressos": _espresso, "latte": _latte, "lattes": _latte,
    "frappe": _frappe, "frappes": _frappe, "barista": _barista, "baristas": _barista, "java": _java, "joe": _joe,
    "mocha": _mocha, "mochas": _mochas, "brew": _brew, "brews": _brew, "brewing": _brew, "brewed": _brew,
    "cuppa": _cuppa, "cup": _cup, "cups": _cup, "mug": _mug, "mugs": _mug, "beans": _beans, "go juice": _go_juice,
}
"""The sense rule of each ambiguous lexicon term (the key is the folded term, words joined by one space)."""


@lru_cache(maxsize=8)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    words = sorted({fold(t).strip() for t in terms if re.search(r"[a-zA-Z]", fold(t))}, key=len, reverse=True)
    symbols = sorted({t.strip() for t in terms if t.strip() and not re.search(r"[a-zA-Z]", fold(t))}, key=len, reverse=True)
    alternatives = [r"[\s-]+".join(map(re.escape, re.split(r"[\s-]+", w))) + (r"[a-z]*" if w == "coffee" else "")
                    for w in words]
    parts = []
    if alternatives:
        first = re.escape("".join(sorted({w[0] for w in words})))
        # the lookahead on first letters lets the engine skip most positions without trying every word
        parts.append(rf"(?<![a-z])(?=[{first}])(?:{'|'.join(alternatives)})(?![a-z])")
    parts += [re.escape(s) for s in symbols]
    return re.compile("|".join(parts) or r"(?!)")


def _key(matched: str) -> str:
    key = re.sub(r"[\s-]+", " ", matched)
    return "coffee" if key.startswith("coffee") and " " not in key else key


def coffee_spans(view: TextView, persona: Persona) -> list[tuple[int, int]]:
    """View spans of every lexicon term used in its coffee sense."""
    text = view.text
    folded = fold(text)
    low = lower_same_length(text).translate(_UNACCENT)
    out = []
    for m in _pattern(persona.banned_phrases.coffee_reference).finditer(folded):
        start, end = m.span()
        rule = SENSES.get(_key(m.group()))
        if rule is not None:
            s_start, s_end = view.sentence(start)
            if not rule(_Context(low, text[start:end], start, end, s_start, s_end)):
                continue
        out.append((start, end))
    return out


def coffee_match(text: str, persona: Persona, since: int = 0) -> bool:
    """True if a coffee term (in its coffee sense) ends after ``since`` in ``text``.

    The rewriter's decoder calls this per candidate token, with ``since`` at the old end of the text."""
    view = TextView.of(text)
    return any(view.span(a, b)[1] > since for a, b in coffee_spans(view, persona))


def coffee_hits(view: TextView, persona: Persona) -> list[RuleHit]:
    """One hit per coffee term, with the sentence-level fix described in the module docstring (a sentence
    with several terms is dropped once)."""
    text = view.text
    first, last = len(text) - len(text.lstrip()), len(text.rstrip())
    hits, dropped = [], set()
    for start, end in coffee_spans(view, persona):
        o_start, o_end = view.span(start, end)
        if not _LETTER.search(text, start, end):  # a symbol (☕): drop it with the space after it
            o_end = view.pos(end)
            if view.original[o_end:o_end + 1] == " ":
                o_end += 1
            hits.append(RuleHit("coffee_reference", o_start, o_end, ""))
            continue
        s_start, s_end = view.sentence(start)
        if view.holds_code(s_start, s_end):  # never touch code: lose just the coffee words
            hits.append(RuleHit("coffee_reference", o_start, o_end, ""))
        elif s_start <= first and s_end >= last and not _ADJECTIVE.search(text, start, end):
            # the whole response is one coffee sentence: keep it, the coffee noun phrase becomes "a break"
            window = max(s_start, start - 60)
            phrase = _NOUN_PHRASE.search(text[window:start])
            np_start = window + phrase.start() if phrase else start
            replacement = "A break" if view.starts_sentence(np_start) else "a break"
            hits.append(RuleHit("coffee_reference", view.pos(np_start), o_end, replacement))
        elif s_start not in dropped:
            dropped.add(s_start)
            hits.append(RuleHit("coffee_reference", *_drop_span(view, s_start, s_end), ""))
    return hits


def _drop_span(view: TextView, s_start: int, s_end: int) -> tuple[int, int]:
    """The original span to delete for the sentence piece ``[s_start, s_end)``: a sentence that ends a line
    but did not start one keeps the line break, so paragraphs never merge."""
    t = view.text
    body = t[s_start:s_end]
    tail = len(body) - len(body.rstrip(" \t\n"))
    starts_line = s_start == 0 or t[s_start - 1] == "\n"
    if "\n" in body[len(body) - tail:] and not starts_line:
        end = s_start + len(body) - tail  # keep the break, drop the spaces before the sentence instead
        start = s_start
        while start > 0 and t[start - 1] in " \t":
            start -= 1
        return view.pos(start), view.pos(end)
    return view.pos(s_start), view.pos(s_end)
