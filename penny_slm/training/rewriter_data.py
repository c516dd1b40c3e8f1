"""Parallel data for the rewriter: (violating response → Penny-voice rewrite) pairs.

How it is made (see ``docs/DATA.md``): a *substance* sentence or two that is already in Penny's voice
(hand-written here, plus the tone head's shared content) is wrapped in the violations the guard must
undo: cheerleading openers and closers, hype words, ALL-CAPS excitement, exclamation storms,
``*asterisk actions*``, coffee asides and repetition of the user's name, one to three at a time.
The target is the substance, unchanged: the rewriter learns to delete the performance and keep the
answer. About a fifth of the pairs are clean responses that must come back unchanged.

The test split is built from ``guard_bases.jsonl`` (hand-written separately for the guard eval) with
its own opener, closer, action and aside lists, so no phrase a test source contains was trained on.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from penny_slm.jsonl import jsonl_objects
from penny_slm.training.datasets import data_dir
from penny_slm.training.tone_templates import CHEER_CLOSE, CHEER_OPEN, CONTENT

RESPONSES = [
    # coding
    "The test fails because the fixture reuses the same temp directory. Give each test its own `tmp_path`.",
    "Your Dockerfile copies the whole repo before installing dependencies, so every edit busts the cache.",
    "That's a race: two workers read the counter before either writes it. Use a lock or an atomic increment.",
    "The 404 comes from the trailing slash. The route is `/users`, you're calling `/users/`.",
    "Pandas is reading the date column as text. Pass `parse_dates=['created']` to `read_csv`.",
    "The recursion has no base case for an empty list, which is why it never stops.",
    "Your regex is greedy. Use `.*?` so it stops at the first closing tag.",
    "The memory grows because the cache never evicts. An LRU with a size limit fixes it.",
    "Git says detached HEAD because you checked out a commit, not a branch. `git switch -c fix` keeps your work.",
    "The query returns duplicates because of the join on `orders`. Add `DISTINCT` or group by the user id.",
    "Rust won't let you borrow it mutably twice. Split the function or clone the small part you need.",
    "The timeout is in milliseconds, not seconds, so 30 means thirty milliseconds.",
    "That warning is harmless: the library will drop Python 3.8 support next year.",
    "Your React component re-renders because the object in the dependency array is new every time.",
    "The CSV has a byte order mark, so the first header is `\\ufeffname`. Open it with `utf-8-sig`.",
    "The build is slow because it compiles the tests in release mode. Drop `--release` for local runs.",
    "Sort once and binary search, and the lookup goes from linear to logarithmic.",
    "The environment variable isn't set inside the cron job. Cron runs with an almost empty environment.",
    "The float comparison fails because 0.1 + 0.2 is not exactly 0.3. Compare with a tolerance.",
    "Your branch is 40 commits behind main. Rebase before you ask for review.",
    "The function mutates its default argument, so the list keeps growing between calls.",
    "The JSON is invalid because of the trailing comma after the last item.",
    "The container can't reach the database at localhost. Use the service name from the compose file.",
    "Your loop does a database query per row. Fetch them in one query and the page loads in a second.",
    "The API key is in the URL, which means it ends up in server logs. Send it in a header.",
    "Unit tests are green; the integration test fails on the timezone. Use UTC in the fixture.",
    "The script works on your machine because your shell is zsh. The server runs it with sh.",
    "The model overfits: training loss keeps falling, validation loss went up after epoch three.",
    "That index is never used because the query wraps the column in `LOWER()`.",
    "The segfault is a use-after-free: the buffer is released before the callback runs.",
    # everyday
    "The train leaves at 7:52, and the next one is 20 minutes later.",
    "Two cups of rice need about three cups of water and 18 minutes.",
    "Your rent is 38% of your income. The usual advice is under a third.",
    "The package says two to four business days, so Thursday at the earliest.",
    "Soak the pan overnight and the burnt bits come off with a sponge.",
    "A 20% tip on 85 dollars is 17 dollars.",
    "The library closes at 6 on Saturdays.",
    "Your passport expires in five months, and some countries want six months left.",
    "Basil hates the cold. Keep it off the windowsill in winter.",
    "The warranty covers the battery for two years, so the replacement should be free.",
    "Moving the meeting to Tuesday clashes with your dentist appointment.",
    "Stretch before the run and keep the first kilometre slow.",
    "The recipe serves four, so halve everything for two.",
    "That bus route was cut last spring; the 14 covers most of it now.",
    "A cheaper flight leaves at 6 a.m., if you can face the alarm.",
    "Your phone bill went up because the promotional rate ended in March.",
    "Paint the ceiling first, then the walls, or you'll be repainting the walls.",
    "The plant is yellowing from too much water, not too little.",
    "Six hours of sleep three nights running is a debt, not a lifestyle.",
    "The gym is quietest around 2 p.m. on weekdays.",
    "Your car is due for an oil change at 45,000 km, which is next month.",
    "Freeze the bread sliced, then toast it straight from the freezer.",
    "The return window is 30 days from delivery, so you have until the 12th.",
    "Split three ways, dinner comes to 41 dollars each.",
    "The museum is free on the first Sunday of the month.",
    # emotional
    "That sounds like a hard week. You don't have to fix all of it tonight.",
    "Being nervous before the talk is normal. It usually means you care about it.",
    "You're allowed to be annoyed that the plan fell through.",
    "Missing your old team makes sense. You spent three years with them.",
    "The rejection says more about their budget than about your work.",
    "You finished the marathon. Your legs will file a complaint tomorrow.",
    "It's fine to take a day off after a launch like that.",
    "Grief doesn't keep a schedule. Some days are just worse.",
    "You called your dad, which was the hard part. The rest can wait.",
    "You got the job. They picked you out of 200 applicants.",
    "The breakup was three weeks ago. Feeling flat is expected, not a failure.",
    "Your friend forgot your birthday. Tell them, they'll want to make it up to you.",
    "You passed the exam with 91%. The studying paid off.",
    "Feeling lonely in a new city is common for the first few months.",
    "You said no to the extra project. That's a boundary, not laziness.",
    "The first draft is supposed to be bad. That's what the second draft is for.",
    "You've been sleeping badly since the move. Give the new place a few weeks.",
    "Your sister's wedding speech went fine. Nobody remembers the stumble but you.",
    "Sitting with it for a day before you reply is a good idea.",
    "You don't owe anyone an explanation for leaving the group chat.",
    "The promotion went to someone else. Ask your manager what would change the answer next time.",
    "You finally booked the doctor's appointment. Future you approves.",
    "Starting again at 40 is not late. It's just starting.",
    "It's okay that you cried at the vet. He was a good dog.",
    "You shipped the app. Three people downloaded it, and one of them isn't your mum.",
]

# Train-split decorations.
HYPE_WORDS = ["absolutely", "totally", "super", "incredibly", "literally", "so"]
CAPS_LINES = ["This is HUGE.", "AMAZING work.", "So EXCITING.", "INCREDIBLE.", "You are AWESOME.", "WOW, just WOW."]
STORM_OPENERS = ["Wow!!!", "Yes!!", "Omg!!!", "Yay!!", "Woohoo!!!", "Ha!!"]
ACTIONS = ["*grins*", "*does a happy dance*", "*high fives you*", "*claps excitedly*", "*beams*",
           "*sips coffee*", "*bounces in seat*", "*throws confetti*", "*nods wisely*"]
COFFEE_ASIDES = ["Grab a coffee first.", "Time for a celebratory latte.", "This calls for an espresso.",
                 "Over a cup of coffee, here's the deal.", "Let me refill my coffee mug.", "Coffee break earned."]
NAME_OPENERS = ["{name}, ", "Okay {name}, ", "Listen, {name}: ", "So {name}, "]
NAME_CLOSERS = ["You got this, {name}.", "Nice one, {name}.", "That's it, {name}.", "Trust me, {name}."]

# Test-split decorations: none of these phrases appear in training sources.
TEST_CHEER_OPEN = ["OMG you are such a genius.", "Yesss, you brilliant person.", "Honestly you're the GOAT.",
                   "You magnificent human, look at this.", "I am beyond thrilled for you."]
TEST_CHEER_CLOSE = ["You're an absolute legend.", "I'm cheering so hard for you.", "Pure brilliance, as usual.",
                    "Nobody is prouder than me right now.", "You're going to do great things."]
TEST_CAPS_LINES = ["This is EPIC.", "SO GOOD.", "BEST NEWS EVER.", "What a WIN."]
TEST_STORM_OPENERS = ["Whoa!!!", "Hooray!!", "Aaah!!!"]
TEST_ACTIONS = ["*jumps up and down*", "*squeals*", "*gives a thumbs up*", "*winks*", "*cheers loudly*"]
TEST_COFFEE_ASIDES = ["Pour yourself a cappuccino for this one.", "Let's chat over a mocha.",
                      "Caffeine first, then code."]
TEST_NAME_OPENERS = ["Hey {name}, ", "Right {name}, "]
TEST_NAME_CLOSERS = ["Proud of you, {name}.", "Go for it, {name}."]

FAMILIES = ("cheer", "hype", "caps", "storm", "action", "coffee", "name")


@dataclass(frozen=True, slots=True)
class Decorations:
    """The phrase lists one split decorates its sources with (train and test use separate lists)."""
    cheer_open: list[str]
    cheer_close: list[str]
    caps_lines: list[str]
    storm_openers: list[str]
    actions: list[str]
    coffee_asides: list[str]
    name_openers: list[str]
    name_closers: list[str]


TRAIN = Decorations(CHEER_OPEN, CHEER_CLOSE, CAPS_LINES, STORM_OPENERS, ACTIONS, COFFEE_ASIDES, NAME_OPENERS, NAME_CLOSERS)
TEST = Decorations(TEST_CHEER_OPEN, TEST_CHEER_CLOSE, TEST_CAPS_LINES, TEST_STORM_OPENERS, TEST_ACTIONS,
                   TEST_COFFEE_ASIDES, TEST_NAME_OPENERS, TEST_NAME_CLOSERS)


@dataclass(frozen=True, slots=True)
class Pair:
    """One rewriter pair: a decorated (or clean) source and the substance it must come back as."""
    source: str
    target: str
    families: tuple[str, ...]  # empty: a clean response that must come back unchanged

    def to_dict(self) -> dict[str, object]:
        """The pair as one JSONL row."""
        return {"source": self.source, "target": self.target, "families": list(self.families)}


def _lower_first(text: str) -> str:
    """"The loop..." → "the loop..." after a name opener; "OMG", "NASA", "I'm" and "UTF-8" keep their capitals."""
    word = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if word[:1].isupper() and word[1:2].islower() else text


def decorate(substance: str, families: tuple[str, ...], deco: Decorations, rng: random.Random, name: str = "CJ") -> str:
    """``substance`` wrapped in the given violation families (the order of wrapping is fixed, the phrases seeded)."""
    text = substance
    if "hype" in families:
        words = text.split(" ")
        outside_code = [i for i in range(len(words)) if " ".join(words[: i + 1]).count("`") % 2 == 0 and "`" not in words[i]]
        i = rng.choice(outside_code or [0])
        words.insert(i, rng.choice(HYPE_WORDS) + " amazing," if i == 0 else rng.choice(HYPE_WORDS))
        text = " ".join(words)
        if i == 0:
            text = text[0].upper() + text[1:]
    if "storm" in families:
        plain = "`" not in text and "\n" not in text  # never put "!" inside code or list items
        body = text.replace(". ", "!! ").rstrip(".") + "!!!" if plain else text
        text = f"{rng.choice(deco.storm_openers)} {body}"
    if "caps" in families:
        text = f"{text} {rng.choice(deco.caps_lines)}" if rng.random() < 0.5 else f"{rng.choice(deco.caps_lines)} {text}"
    if "cheer" in families:
        text = f"{rng.choice(deco.cheer_open)} {text}"
        if rng.random() < 0.6:
            text = f"{text} {rng.choice(deco.cheer_close)}"
    if "coffee" in families:
        text = f"{rng.choice(deco.coffee_asides)} {text}" if rng.random() < 0.5 else f"{text} {rng.choice(deco.coffee_asides)}"
    if "action" in families:
        text = f"{rng.choice(deco.actions)} {text}" if rng.random() < 0.5 else f"{text} {rng.choice(deco.actions)}"
    if "name" in families:
        text = rng.choice(deco.name_openers).format(name=name) + _lower_first(text)
        text = f"{text} {rng.choice(deco.name_closers).format(name=name)}"
    return text


def make_pairs(substances: list[str], deco: Decorations, per_substance: int, seed: int, clean_share: float = 0.2) -> list[Pair]:
    """``per_substance`` distinct pairs per substance; ``clean_share`` of all pairs are identity pairs."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for substance in substances:
        seen: set[str] = set()
        for _ in range(per_substance * 4):
            if len(seen) == per_substance:
                break
            if rng.random() < clean_share and substance not in seen:
                seen.add(substance)
                pairs.append(Pair(substance, substance, ()))
                continue
            k = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
            families = tuple(sorted(rng.sample(FAMILIES, k), key=FAMILIES.index))
            source = decorate(substance, families, deco, rng)
            if source not in seen:
                seen.add(source)
                pairs.append(Pair(source, substance, families))
    rng.shuffle(pairs)
    return pairs


def train_substances() -> list[str]:
    """The training substances: the tone templates' shared content sentences and the hand-written ``RESPONSES``."""
    return [*CONTENT, *RESPONSES]


def test_substances() -> list[str]:
    """The test substances: the hand-written ``guard_bases.jsonl`` responses, never used for training."""
    return [str(o["text"]) for _, o in jsonl_objects(data_dir() / "guard_bases.jsonl")]


def load_pairs(path: str | Path) -> list[Pair]:
    """Read a rewriter JSONL file into pairs."""
    return [Pair(str(o["source"]), str(o["target"]), tuple(o.get("families", ()))) for _, o in jsonl_objects(Path(path))]


def as_the_guard_sends(pairs: list[Pair], share: float, seed: int) -> list[Pair]:
    """``share`` of the decorated sources replaced by their rule-fixed text, which is what the guard hands
    the rewriter ("This is HUGE." arrives as "This is huge.", asterisk actions and coffee asides already
    gone); the rest stay raw, as ``penny-slm rewrite`` passes them. A source the rules alone fix stays raw:
    the guard would not call the rewriter for it, and identity pairs are plenty already."""
    from penny_slm.config import load_persona
    from penny_slm.rules.prohibitions import fix

    persona, rng = load_persona(), random.Random(seed)
    out = []
    for pair in pairs:
        if pair.families and rng.random() < share:
            fixed = fix(pair.source, persona)[0]
            pair = pair if fixed == pair.target else Pair(fixed, pair.target, pair.families)
        out.append(pair)
    return out


def rewriter_splits(seed: int = 23) -> tuple[list[Pair], list[Pair]]:
    """(train ≥ 2,000 pairs, test): what ``write_rewriter_splits`` writes, seeded."""
    from penny_slm.training.datasets import load_tone_jsonl

    def dry(split: str) -> list[Pair]:  # every measured response of the tone data (shuffled): must stay unchanged
        rows = [e.text for e in load_tone_jsonl(data_dir() / f"tone_{split}.jsonl") if not e.labels["tone"]]
        return [Pair(t, t, ()) for t in random.Random(seed).sample(rows, len(rows))]

    # all 714 dry tone_train rows: with a sample of 300, the model cut Penny's own closers from clean text
    decorated = make_pairs(train_substances(), TRAIN, per_substance=18, seed=seed)
    train = as_the_guard_sends(decorated, share=0.5, seed=seed) + dry("train")
    test = make_pairs(test_substances(), TEST, per_substance=5, seed=seed + 1) + dry("test")
    random.Random(seed).shuffle(train)
    return train, test


def write_rewriter_splits(seed: int = 23) -> tuple[int, int]:
    """Regenerate ``rewriter_train.jsonl`` and ``rewriter_test.jsonl``; returns their sizes."""
    train, test = rewriter_splits(seed)
    for name, pairs in (("rewriter_train.jsonl", train), ("rewriter_test.jsonl", test)):
        (data_dir() / name).write_text("".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    return len(train), len(test)
