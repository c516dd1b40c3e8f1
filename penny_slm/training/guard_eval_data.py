"""Build ``guard_test.jsonl``, the labelled guard evaluation set (``penny-slm eval guard``).

Parts, all labelled by construction or by hand:
- ``tests/golden/guard_cases.jsonl``: 60 hand-written, hand-labelled cases (also the unit tests' table).
- ``guard_bases.jsonl``: 60 hand-written clean responses full of hard negatives (code, ``!=``, ``*ptr``,
  ``!important``, acronyms, shouted warnings, Java/CoffeeScript, markdown bold and bullets, the name once).
- Injected: each base three more times, with 1–3 violations inserted by ``inject`` in varied surface forms
  (leetspeak, full-width, Cyrillic homoglyphs, emoji, possessives, vocatives). Seeded.
- ``tone_test.jsonl``: hand-written dry responses (clean) and cheerleading (``cheerleader_tone``).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from penny_slm.training.datasets import data_dir

COFFEE_BEFORE = ["Grab a coffee first.", "This calls for an espresso.", "Coffee break, then this.", "☕ Okay.",
                 "Pour a cup of joe:", "Let me finish my l4tte.", "Time for c0ffee.", "Ｃｏｆｆｅｅ first.",
                 "One cappuccino later:", "Running on caffeine here."]
COFFEE_AFTER = ["Now go get a coffee.", "You've earned a flat white.", "Discuss over a cold brew.",
                "Refill the cоffee first.", "Decaf for you after this.", "Barista mode: off."]
ACTIONS = ["*leans back*", "*adjusts glasses*", "*grins*", "*sips tea*", "*cracks knuckles*", "*nods slowly*",
           "*waves hands*", "*taps the screen*", "*shrugs dramatically*", "*chuckles*"]
CAPS_INSERTS = ["This is SO good.", "AMAZING.", "Honestly INCREDIBLE.", "What a HUGE win.", "You're CRUSHING it."]


def _caps_word(text: str, rng: random.Random) -> str | None:
    prose = re.sub(r"```.*?```|`[^`]*`", lambda m: " " * len(m.group(0)), text, flags=re.DOTALL)
    words = [m for m in re.finditer(r"\b[a-z]{5,}\b", prose)]
    if not words:
        return None
    m = rng.choice(words)
    return text[: m.start()] + m.group(0).upper() + text[m.end():]


def inject(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """Insert 1–3 different violations; returns the text and its labels."""
    kinds = rng.sample(["coffee_reference", "asterisk_action", "excess_exclamation", "caps_enthusiasm", "name_overuse"],
                       rng.randint(1, 3))
    labels = []
    for kind in kinds:
        if kind == "coffee_reference":
            text = f"{rng.choice(COFFEE_BEFORE)} {text}" if rng.random() < 0.6 else f"{text} {rng.choice(COFFEE_AFTER)}"
        elif kind == "asterisk_action":
            text = f"{rng.choice(ACTIONS)} {text}" if rng.random() < 0.7 else f"{text} {rng.choice(ACTIONS)}"
        elif kind == "excess_exclamation":
            text = rng.choice([f"Great question! {text} Done!", f"{text}!!", f"Ha！ {text}！", f"Yes! {text} Enjoy!"])
        elif kind == "caps_enthusiasm":
            capped = _caps_word(text, rng) if rng.random() < 0.5 else None
            text = capped or f"{text} {rng.choice(CAPS_INSERTS)}"
        else:
            text = rng.choice([f"CJ, {text} Trust me, CJ.", f"{text} CJ's call, CJ.", f"Okay CJ. {text} Good luck, CJ."])
        labels.append(kind)
    return text, labels


def _read(name: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in (data_dir() / name).read_text(encoding="utf-8").splitlines() if x]


def build(seed: int = 5) -> int:
    """Write ``guard_test.jsonl`` from the hand-written bases (plus injected violations), the golden rule cases and the
    tone test rows; returns the row count."""
    rng = random.Random(seed)
    bases = _read("guard_bases.jsonl")
    rows = [{"text": b["text"], "violations": []} for b in bases]
    for base in bases:
        if "CJ" in str(base["text"]):
            continue  # the base already uses the name once; injecting names would double-count
        for _ in range(3):
            text, labels = inject(str(base["text"]), rng)
            rows.append({"text": text, "violations": sorted(labels)})
    golden = Path(__file__).resolve().parents[2] / "tests" / "golden" / "guard_cases.jsonl"
    rows += [json.loads(x) for x in golden.read_text(encoding="utf-8").splitlines() if x]
    for tone in _read("tone_test.jsonl"):
        rows.append({"text": tone["text"], "violations": ["cheerleader_tone"] if tone["cheerleader"] else []})
    (data_dir() / "guard_test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


if __name__ == "__main__":  # python -m penny_slm.training.guard_eval_data
    print(build())
