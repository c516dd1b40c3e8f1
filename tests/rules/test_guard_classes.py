"""Golden tables, one per failure class of the held-out measurement (issue: real LLM text): full-width letters,
zero-width characters, the name's spellings, asterisk actions and emphasis, coffee senses, caps excitement and
acronyms, single mentions and namesakes. Each class holds violations and hard negatives."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from penny_slm.config import Persona, load_persona
from penny_slm.rules.prohibitions import code_spans, detect, fix

PERSONA = load_persona()
ROWS = [json.loads(line) for line in (Path(__file__).parents[1] / "golden" / "guard_classes.jsonl").read_text().splitlines()]
IDS = [f"{r['class']}:{r['text'][:36]}" for r in ROWS]


def test_every_class_has_enough_cases() -> None:
    """At least 15 per class; the mixed classes hold violations and hard negatives, the others one kind."""
    per_class = Counter(r["class"] for r in ROWS)
    assert len(per_class) == 10 and min(per_class.values()) >= 15
    for cls in per_class:
        kinds = {bool(r["violations"]) for r in ROWS if r["class"] == cls}
        expected = {False} if cls.endswith("negatives") else {True} if cls.endswith(("positives", "actions")) else {True, False}
        assert kinds == expected, cls


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_detection(row: dict[str, object]) -> None:
    assert sorted({h.rule for h in detect(str(row["text"]), PERSONA)}) == sorted(row["violations"])  # type: ignore[arg-type]


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_fix(row: dict[str, object]) -> None:
    text = str(row["text"])
    fixed, changes = fix(text, PERSONA)
    assert detect(fixed, PERSONA) == []
    assert fix(fixed, PERSONA) == (fixed, ())
    assert [text[a:b] for a, b in code_spans(text)] == [fixed[a:b] for a, b in code_spans(fixed)]
    assert bool(changes) == bool(row["violations"])
    if not row["violations"]:
        assert fixed == text
    if "fixed" in row:
        assert fixed == row["fixed"]
    for change in changes[:1]:
        assert text[change.start:change.end] == change.before


@pytest.mark.parametrize(
    ("persona", "text", "mentions_flagged", "fixed"),
    [
        (replace(PERSONA, user_name="Casey", nicknames=("CJ", "Case")), "Casey, look. CJ, line 3. Case, line 9.", 2,
         "Casey, look. Line 3. Line 9."),
        (replace(PERSONA, user_name="Will"), "Will this work? Will, check line 3. Thanks, Will.", 1,
         "Will this work? Will, check line 3. Thanks."),
        (replace(PERSONA, user_name="Will"), "It will work, and the will is signed. Will, merge it.", 0, None),
        (replace(PERSONA, user_name="Mary Jane"), "Mary Jane, hi. Mary-Jane, the fix works. Sure, maryjane.", 2,
         "Mary Jane, hi. The fix works. Sure."),
        (replace(PERSONA, user_name="Sam", max_name_mentions=2), "Sam, hi. Sam, look. Sam, done.", 1, "Sam, hi. Sam, look. Done."),
        (replace(PERSONA, user_name="Sam"), "Sam Altman runs OpenAI. Sam, your turn.", 0, None),
    ],
)
def test_nicknames_and_other_names(persona: Persona, text: str, mentions_flagged: int, fixed: str | None) -> None:
    assert len([h for h in detect(text, persona) if h.rule == "name_overuse"]) == mentions_flagged
    if fixed is not None:
        assert fix(text, persona)[0] == fixed
