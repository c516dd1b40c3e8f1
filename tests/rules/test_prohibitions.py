"""The rule layer on hand-written golden cases and on generated text (hypothesis)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from penny_slm.config import load_persona
from penny_slm.rules.prohibitions import code_spans, detect, fix, sentence_spans

PERSONA = load_persona()
CASES = [json.loads(line) for line in (Path(__file__).parents[1] / "golden" / "guard_cases.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:40] for c in CASES])
def test_golden_detection(case: dict[str, object]) -> None:
    assert {h.rule for h in detect(str(case["text"]), PERSONA)} == set(case["violations"])  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:40] for c in CASES])
def test_golden_fix_is_clean_idempotent_and_keeps_code(case: dict[str, object]) -> None:
    text = str(case["text"])
    fixed, changes = fix(text, PERSONA)
    assert detect(fixed, PERSONA) == []
    assert fix(fixed, PERSONA) == (fixed, ())
    assert [text[a:b] for a, b in code_spans(text)] == [fixed[a:b] for a, b in code_spans(fixed)]
    assert bool(changes) == bool(case["violations"])
    if not case["violations"]:
        assert fixed == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Grab a coffee and let's dive in. Here's how closures work.", "Here's how closures work."),
        ("*adjusts glasses* The derivative is 3x².", "The derivative is 3x²."),
        ("Great question! Let me explain! This is AMAZING!!!", "Great question! Let me explain. This is amazing."),
        ("CJ, you nailed it. Honestly CJ, it's good. Keep going, CJ.", "CJ, you nailed it. Honestly, it's good. Keep going."),
        ("Sure thing, CJ. CJ's code is fine.", "Sure thing, CJ. Your code is fine."),
        ("Wow！！ That worked！", "Wow! That worked."),
        ("Let's debug this over coffee.", "Let's debug this over a break."),
        ("The route is `/users`, you call `/users/`!! Fix it!", "The route is `/users`, you call `/users/`! Fix it."),
        ("See https://ex.com/a!b!c, then retry!! Twice!", "See https://ex.com/a!b!c, then retry! Twice."),
    ],
)
def test_fixes_read_naturally(text: str, expected: str) -> None:
    assert fix(text, PERSONA)[0] == expected


def test_changes_point_at_the_original() -> None:
    text = "Nice! Really nice! *winks*"
    _, changes = fix(text, PERSONA)
    for change in changes:
        assert text[change.start:change.end] == change.before
    assert {c.rule for c in changes} == {"excess_exclamation", "asterisk_action"}


ZW = "\u200b"
_PLAIN_WORDS = [
    "coffee", "c0ffee", "latte", "☕", "*grins*", "*sips tea*", "!", "!!", "！", "AMAZING", "SO", "CJ", "CJ,", "CJ's",
    "the", "test", "passes", "API", "JSON", "NOT", "Java", "CoffeeScript", "`x != y`", "`*ptr`", "**bold**", "and",
    "you", "fix", "it.", "done.", "?", "Nice.", "\n", "*", "cj", "HTTP", "WOW",
]
# the failure classes of the held-out measurement, mixed into the same generated text
_CLASS_WORDS = [
    "ＡＭＡＺＩＮＧ", "ＣＪ", "ｃｏｆｆｅｅ", "＊ｇｒｉｎｓ＊", f"C{ZW}J", f"co{ZW}ffee", f"RE{ZW}ALLY", f"*{ZW}winks*",  # obfuscation
    "C.J.", "C. J.", "Cj", "C.J.,", "CJ Stroud", "C.J. Cregg", "Coach CJ",  # the name, namesakes
    "*leans back in chair*", "*fist-bump*", "*does a little happy dance*", "*slow clap*", "*really*", "*can*",
    "*feels like*", "**kwargs", "a * b", "*.txt", "* item",  # actions, emphasis, code-like asterisks
    "this is SO good", "you are REALLY close", "MAX_RETRIES", "README.md", "CHANGELOG", ".ENV", "CO2", "$AAPL",
    "GB", "XIV", "Do NOT paste", "BOTTLENECK", "(OECD)",  # caps
    "grab a cup", "over coffee", "cup of joe", "some java", "an iced mocha", "morning brew", "bean juice",
    "brew install", "Mocha test", "Espresso tests on Android", "spill the beans", "World Cup", "mug shot",  # coffee senses
    "`SO AMAZING coffee`", "`C.J. *grins*`", "`README.md`",  # inline code holding everything
]
_WORDS = st.sampled_from(_PLAIN_WORDS + _CLASS_WORDS)
_TEXT = st.lists(_WORDS, min_size=1, max_size=40).map(" ".join)
_CODE_BLOCK = st.sampled_from(["```py\nprint('WOW!!! coffee *grins* CJ CJ')\n```", "```\na != b\n```"])


def _zero_width(text: str) -> str:
    """A zero-width space between every two letters: what detection must see through."""
    return re.sub(r"(?<=[^\W\d_])(?=[^\W\d_])", ZW, text)


def _full_width(text: str) -> str:
    return re.sub(r"[A-Za-z]", lambda m: chr(ord(m.group()) + 0xFEE0), text)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_zero_width_and_full_width_letters_hide_nothing(text: str) -> None:
    """The same rules fire on the text, on it with zero-width characters inside every word and on it in
    full-width letters (code included: its span and its masking do not change)."""
    rules = sorted({h.rule for h in detect(text, PERSONA)})
    assert sorted({h.rule for h in detect(_zero_width(text), PERSONA)}) == rules
    assert sorted({h.rule for h in detect(_full_width(text), PERSONA)}) == rules


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_hits_are_spans_of_the_original(text: str) -> None:
    obfuscated = _zero_width(text)
    for hit in detect(obfuscated, PERSONA):
        assert 0 <= hit.start <= hit.end <= len(obfuscated)
        assert not any(a < hit.end and hit.start < b for a, b in code_spans(obfuscated))


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_output_never_contains_an_absolute_violation(text: str) -> None:
    fixed, _ = fix(text, PERSONA)
    assert detect(fixed, PERSONA) == []


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_guarding_twice_changes_nothing_more(text: str) -> None:
    once, _ = fix(text, PERSONA)
    assert fix(once, PERSONA) == (once, ())


@settings(max_examples=200, deadline=None)
@given(_TEXT, _CODE_BLOCK, _TEXT)
def test_code_blocks_survive_byte_for_byte(before: str, block: str, after: str) -> None:
    text = f"{before}\n{block}\n{after}"
    fixed, _ = fix(text, PERSONA)
    assert block in fixed
    assert [text[a:b] for a, b in code_spans(text)] == [fixed[a:b] for a, b in code_spans(fixed)]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    fixed, _ = fix(text, PERSONA)
    assert isinstance(fixed, str)
    assert not re.search(r"\*(grins|sips)\b", fixed)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200).filter(lambda t: "`" not in t), _TEXT), _CODE_BLOCK)
def test_sentence_spans_cover_the_text_and_never_split_code(text: str, block: str) -> None:
    full = f"{text} {block} {text}"
    spans = sentence_spans(full)
    assert "".join(full[a:b] for a, b in spans) == full
    assert all(a < b for a, b in spans) and all(x[1] == y[0] for x, y in zip(spans, spans[1:]))
    assert any(block in full[a:b] for a, b in spans)


def test_sentence_spans_keep_line_breaks_with_their_sentence() -> None:
    text = "Wow, you legend! Steps:\n* install\n* run\n\nDone."
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Wow, you legend! ", "Steps:\n", "* install\n", "* run\n\n", "Done."]
