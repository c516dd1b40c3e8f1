"""``asterisk_action``: roleplay stage directions between single asterisks (``*grins*``, ``*leans back in chair*``).

A candidate is ``*...*`` in prose (never in code) where the opening ``*`` is not preceded by a letter, digit,
``*`` or backslash, neither ``*`` touches a space on its inner side, the closing ``*`` is not followed by a
letter, digit or ``*``, and the inside is 1–12 words of letters with spaces, hyphens, apostrophes, commas
and a final ``!``/``?``/``...``, on one line. So Markdown bold (``**bold**``), code outside backticks
(``**kwargs``, ``a * b``, ``*ptr``, ``*.txt``), footnote markers (``price*``), bullets (``* item``) and
``*Note:*`` labels are never candidates. Everything is read on the normalized view: full-width ``＊``, ``∗``,
zero-width characters and lookalike letters do not hide an action.

A candidate is an action when, after any leading ``-ly`` adverbs (``*slowly raises hand*``), it is:

1. a stage verb: an intransitive gesture in the third person present (``grins``, ``sighs``, ``nods``,
   ``leans``, ``sips``, ``facepalms``...) or its ``-ing`` form (``*laughing*``) - anywhere in a sentence;
2. any other third-person verb that is used for stage directions but also in prose (``does``, ``takes``,
   ``points``, ``checks``, ``writes``...) - when no subject comes before it in its clause: at the start of a
   sentence or line, after punctuation, after another action or after a discourse word (``oh``, ``okay``,
   ``well``, ``so``...). ``It *does* matter`` and ``The function *returns a list*`` are emphasis;
3. an unknown word ending in ``s`` followed by more words (``*scribbles furiously*``) - only when it stands
   apart on both sides (the left as in 2, and a stop, line end, capital or another action on the right);
4. a gesture noun or sound (``SOUNDS``: ``*sigh*``, ``*cough cough*``, ``*fist-bump*``, ``*drumroll*``), or
   a gesture noun after modifiers (``GESTURE_HEADS``: ``*slow clap*``, ``*chef's kiss*``, ``*happy dance*``,
   ``*dramatic pause*``) - unless an article, possessive or preposition before it makes it part of the
   sentence (``a *pause*``, ``your *hands*``);
5. narration that stands alone (the roleplay register of real chat models): two or more words starting
   lower-case, set apart as a sentence of its own - after a sentence end or at a line start, and before a line
   end, the text's end, another action or a capitalised sentence - when it opens with any ``-ing`` verb
   (``*feeling a profound stillness in this realization*``, ``*sitting with this new perspective*``) or fills
   its whole line (``*urgent clarity*``, ``*pause that feels like looking up*``). Such narration may run to
   ``MAX_NARRATION_WORDS`` words and hold a ``...`` pause (``*settling into something like... home*``).
   Emphasis inside a sentence (``so *running the tests* matters``), a capitalised italic line
   (``*Note that this is experimental*``) and a single italic word on its line are not narration;
6. first-person acting out, set apart the same way: ``I`` and a stage or weak verb's base form, then anything
   in words and punctuation (``Sure! *I slide closer, wrap my arms around you...*``). ``*I think, therefore
   I am.*`` is a quotation, not a gesture.

Actions are read left to right, so one right after another counts as clause-initial (``*grins* *takes a
bow*``), and an action after emphasis does not (``*can* and *frequently does*`` stays).

Everything else between asterisks is emphasis the sentence needs and stays: ``*really*``, ``*not*``, ``*feels
like*``, ``*italic phrase*``. Not caught: actions in underscores (``_grins_``), in bold (``**grins**``),
in brackets (``[grins]``), or past-tense narration (``*grinned*``).

Fix: the action is removed with one neighbouring space; a comma or dash left dangling at the start of its
sentence, or doubled by the removal, goes with it, and a sentence that now starts lower-case is capitalised.
"""

from __future__ import annotations

import re

from penny_slm.rules.view import RuleHit, TextView

STAGE_VERBS = frozenset(
    "sips laughs grins smiles winks nods sighs shrugs waves leans adjusts raises rolls clears chuckles giggles beams "
    "bounces claps dances gasps hugs jumps pouts smirks snaps spins stretches tilts twirls yawns blushes cheers "
    "facepalms gestures glances hums peeks pokes pats scratches squeals wiggles pours brews cracks crosses rubs "
    "high-fives fist-bumps salutes bows curtsies sniffs coughs snorts blinks squints frowns groans mutters grumbles "
    "celebrates munches mimes hops skips struts sways wipes fidgets winces beckons scoffs giggle-snorts whistles "
    "applauds cackles snickers grimaces sobs sniffles swoons gulps shivers shudders slurps stomps tiptoes twiddles "
    "drums paces squeezes swirls fist-pumps air-punches eye-rolls side-eyes head-tilts chef-kisses smooches "
    "boops pumps toasts twinkles wags scribbles doodles strokes narrows furrows arches purses bites cocks perks dusts "
    "brushes polishes flexes waggles punches gazes peers stares nudges elbows fist-pumps thumbs-up".split())
"""Gestures a response acts out; written between asterisks they are a stage direction wherever they stand."""
WEAK_VERBS = frozenset(
    "does takes holds points checks looks reads writes sets puts picks hands offers types thinks ponders wonders "
    "makes gives throws walks sits stands drinks eats grabs slides flips kicks cries whispers pauses shakes "
    "fans rocks tosses turns reaches pulls pushes opens closes lifts drops places pulls steps moves rushes runs "
    "notes straightens settles sets lights taps flicks hands shuffles checks glows".split())
"""Third-person verbs that are stage directions only with no subject before them (``*takes a deep breath*``)."""
SOUNDS = frozenset(
    "sigh sighs gasp gasps cough coughs ahem ugh hmph phew drumroll drum-roll confetti applause facepalm wink grin "
    "shrug nod hug hugs high-five high-fives fist-bump fist-bumps slow-clap mic-drop chef's-kiss happy-dance eye-roll "
    "eyeroll jazz-hands yawn whistle sniff snort giggle chuckle squeal smirk blush gulp boop tsk huff shimmy slurp "
    "sob sniffle swoon air-quotes thumbs-up facepalms headdesk gag retch".split())
"""Gesture nouns and sounds that are a stage direction alone (``*sigh*``, ``*fist-bump*``, ``*cough cough*``)."""
GESTURE_HEADS = frozenset("clap claps kiss dance drop bump pause bow salute smile laugh twirl wiggle sip cheer "
                          "high-five hug nod wave spin".split())
"""Nouns that are a stage direction only with a modifier before them (``*slow clap*``, ``*dramatic pause*``)."""
_MODIFIERS = frozenset(
    "a an big little small slow quick virtual dramatic happy awkward long deep soft loud gentle excited nervous "
    "cough air mic jazz chef's double triple enthusiastic knowing proud tiny huge celebratory victory".split())
_NOT_VERBS = frozenset(
    "is was has does this its his hers ours yours theirs as us gas bus news yes always sometimes perhaps less unless "
    "thus plus across whereas besides towards afterwards forwards backwards downwards upwards series species basis "
    "analysis thesis crisis bonus status focus virus campus census corpus chaos canvas atlas lens process success "
    "access address business class glass mass pass boss loss stress express progress across means ends needs uses "
    "makes feels seems matters works helps changes remains depends involves requires includes comes goes".split())
_DISCOURSE = frozenset(
    "oh ah ahh aw aww well okay ok so and but hmm hm yes yeah no sure honestly alright right look listen now then "
    "anyway also plus um uh wow hey hi hello again meanwhile first".split())
_DETERMINERS = frozenset("a an the this that of for with in my your his her their our its".split())
_RIGHT_GAP = re.compile(r"[ \t]*(?:[,;:—–]|-(?=\s)|\.\.\.|…)?[ \t]*")
_COMMA_AFTER = re.compile(r"[ \t]*[,;]")
MAX_NARRATION_WORDS = 24
_CANDIDATE = re.compile(r"(?<![*\w\\])\*(?![\s*])([^*\n\ue000]{1,160}?)(?<![\s\\])\*(?![*\w])")
_CONTENT = re.compile(r"[A-Za-z][A-Za-z'’ ,-]*(?:[!?]|\.\.\.|…)?")
_NARRATION = re.compile(r"[a-z][A-Za-z'’ ,-]*(?:(?:\.\.\.|…)[A-Za-z'’ ,-]+)*(?:[!?]|\.\.\.|…)?")
_SAYING_VERBS = frozenset("thinks ponders wonders notes reads writes types makes gives sets puts offers".split())
"""Weak verbs that, after a first-person ``I``, say or reason rather than act (``*I think, therefore I am.*``)."""
_FIRST_PERSON = re.compile(r"I [a-z][A-Za-z'’ ,;.!?…-]*")
_NOT_GERUNDS = frozenset(
    "thing nothing something everything anything king ring string spring sing wing bring sting swing morning evening "
    "during ceiling building meaning according notwithstanding pudding darling sibling duckling wedding clothing "
    "icing ping bling awning".split())
_SENTENCE_BEFORE = re.compile(r"(?:^|\n|[.!?…][\"”’')\]]*)[ \t]*$")
_SENTENCE_AFTER = re.compile(r"[ \t]*(?:$|\n|\*|[A-Z])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def _gerunds(verbs: frozenset[str]) -> frozenset[str]:
    out = set()
    for verb in verbs:
        base = verb[:-2] if verb.endswith(("ches", "shes", "sses", "xes", "oes")) else verb[:-1]
        out |= {base + "ing", base[:-1] + "ing", base + base[-1:] + "ing"}
    return frozenset(out)


STAGE_GERUNDS = _gerunds(STAGE_VERBS)
_LEFT_OPEN = re.compile(r"(?:^|[.!?:;,(\[{\"“‘'—–\n-]|[^\x00-\x7f])[ \t]*$")
_AFTER_STAR = re.compile(r"\*[ \t]*$")
_RIGHT_OPEN = re.compile(r"[ \t]*(?:$|[\n.!?,;:)\]}\"”’'—–-]|\*|[A-Z]|[^\x00-\x7f])")


def _left_open(view: TextView, start: int, action_ends: set[int]) -> bool:
    """No subject before ``start`` in its clause: sentence or line start, punctuation, another action (whose
    view end is in ``action_ends``), a discourse word."""
    head = view.text[max(0, start - 40):start]
    if _LEFT_OPEN.search(head) or not head.strip():
        return True
    star = _AFTER_STAR.search(head)  # right after another action ("*grins* *takes a bow*"), not after emphasis
    if star and start - len(head) + star.start() + 1 in action_ends:
        return True
    word = re.search(r"([A-Za-z]+)[ \t]+$", head)
    return bool(word and word.group(1).lower() in _DISCOURSE and _LEFT_OPEN.search(head[:word.start()]))


def _right_open(view: TextView, end: int) -> bool:
    return _RIGHT_OPEN.match(view.text, end) is not None


def _narration(view: TextView, start: int, end: int, content: str, action_ends: set[int]) -> bool:
    """Rule 5: lower-case narration of two or more words set apart as a sentence of its own, led by an
    ``-ing`` verb or alone on its line."""
    words = _WORD.findall(content)
    head = view.text[max(0, start - 40):start]
    after_action = (star := _AFTER_STAR.search(head)) is not None and start - len(head) + star.start() + 1 in action_ends
    if not (_SENTENCE_BEFORE.search(head) or after_action) or not _SENTENCE_AFTER.match(view.text, end):
        return False
    if _FIRST_PERSON.fullmatch(content) and len(words) <= 2 * MAX_NARRATION_WORDS:  # rule 6
        verb = words[1].lower()
        return any(f in STAGE_VERBS or (f in WEAK_VERBS and f not in _SAYING_VERBS) for f in (verb + "s", verb + "es"))
    if not _NARRATION.fullmatch(content) or not 2 <= len(words) <= MAX_NARRATION_WORDS:
        return False
    first = words[0].lower()
    gerund = first.endswith("ing") and len(first) >= 5 and first not in _NOT_GERUNDS
    line_start = view.text.rfind("\n", 0, start) + 1
    line_end = view.text.find("\n", end)
    alone = not view.text[line_start:start].strip() and not view.text[end:None if line_end < 0 else line_end].strip()
    return gerund or alone


def is_action(view: TextView, start: int, end: int, content: str, action_ends: set[int]) -> bool:
    """The rules in the module docstring, for the candidate ``view.text[start:end]`` with inside ``content``;
    ``action_ends`` holds the view ends of the actions found before it."""
    if not _CONTENT.fullmatch(content):
        return _narration(view, start, end, content, action_ends)
    words = [w.lower().replace("’", "'") for w in _WORD.findall(content)]
    if not words or len(words) > 12:
        return _narration(view, start, end, content, action_ends)
    lead = 0
    while lead < len(words) - 1 and words[lead].endswith("ly") and len(words[lead]) > 4:
        lead += 1
    head = words[lead]
    if head in STAGE_VERBS or head in STAGE_GERUNDS:
        return True
    if head in WEAK_VERBS:
        return _left_open(view, start, action_ends)
    joined = "-".join(words)
    modified = len(words) <= 4 and all(w in _MODIFIERS for w in words[:-1])
    if (joined in SOUNDS or all(w in SOUNDS for w in words)
            or (modified and (words[-1] in SOUNDS or (len(words) > 1 and words[-1] in GESTURE_HEADS)))):
        before = re.search(r"([A-Za-z]+)[ \t]*$", view.text[max(0, start - 20):start])
        return not (before and before.group(1).lower() in _DETERMINERS)
    if (len(words) - lead >= 2 and head.endswith("s") and head.isalpha() and head not in _NOT_VERBS
            and not head.endswith(("ss", "us", "is", "ous", "ics")) and content[0].islower()
            and _left_open(view, start, action_ends) and _right_open(view, end)):
        return True
    return _narration(view, start, end, content, action_ends)


def action_hits(view: TextView) -> list[RuleHit]:
    """Every stage direction, with the edit that removes it cleanly (see the module docstring)."""
    hits: list[RuleHit] = []
    action_ends: set[int] = set()
    for m in _CANDIDATE.finditer(view.text):
        if is_action(view, m.start(), m.end(), m.group(1), action_ends):
            action_ends.add(m.end())
            hits.append(_removal(view, m.start(), m.end()))
    return hits


def _removal(view: TextView, start: int, end: int) -> RuleHit:
    t = view.text
    at_start = view.starts_sentence(start)
    a, b = start, end
    right = _RIGHT_GAP.match(t, b)
    left = re.search(r"[ \t]+$", t[max(0, a - 40):a])
    assert right is not None
    if at_start:
        b = right.end()  # "*grins*, sure" → "sure" (then capitalised)
        if t[b:b + 1] == "\n" and (a == 0 or t[a - 1] == "\n"):
            b += 1  # an action alone on its line takes the line with it
            while t[b:b + 1] == "\n" and (a == 0 or t[max(0, a - 2):a] == "\n\n"):
                b += 1  # and the blank line after it, when one is already before it (or it opened the text)
        if b < len(t) and t[b].islower():
            oa, ob = view.span(a, b + 1)
            return RuleHit("asterisk_action", oa, ob, t[b].upper())
    elif (comma := _COMMA_AFTER.match(t, b)) and re.search(r"[,;][ \t]*$", t[max(0, a - 40):a]):
        b = comma.end()  # "Fine, *sighs*, here" → "Fine, here"
        if left:
            a -= len(left.group())
    elif b < len(t) and t[b] in " \t":
        b += 1
    elif left:
        a -= len(left.group())
    oa, ob = view.span(a, b)
    return RuleHit("asterisk_action", oa, ob, "")
