"""Degenerate output no persona rule names (issue 23): a looped sentence or phrase, the system prompt echoed back.

Golden cases for detection live in ``tests/golden/guard_cases.jsonl`` (tested by ``test_prohibitions``); this
file checks the fixes, the exemptions, the false-positive rate on the packaged clean responses, the guard's
fallback on an echo and linear time. No model is needed: the echo check and the rules run before the tone head.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from penny_slm.config import load_persona
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.guard import ECHO_FALLBACK, PersonalityGuard
from penny_slm.pipeline.prompt import build_system_prompt, render_notes
from penny_slm.pipeline.research_provider import ResearchNotes
from penny_slm.rules.echo import prompt_echo
from penny_slm.rules.prohibitions import detect, fix
from penny_slm.training.datasets import data_dir

PERSONA = load_persona()
PROMPT = build_system_prompt(PERSONA, None)
LOOP = "Bitcoin is trading near $1.20 right now. "


@pytest.mark.issue(23)
@pytest.mark.parametrize(("text", "expected"), [
    (LOOP * 6 + "Prices move fast.", "Bitcoin is trading near $1.20 right now. Prices move fast."),
    ("A decorator wraps a function. It returns a new function. A decorator wraps a function.\n\nUse `@name`.",
     "A decorator wraps a function. It returns a new function.\n\nUse `@name`."),
    ("I can help with that. I can help with that.\nWhat is the error?", "I can help with that.\nWhat is the error?"),
    ("The answer is that the answer is that the answer is that the answer is 36.", "The answer is that the answer is 36."),
    ("Sure. Sure. Grab a coffee. Grab a coffee. The port is 8080. The port is 8080.", "Sure. Sure. The port is 8080."),
])
def test_repeats_collapse_to_one(text: str, expected: str) -> None:
    fixed, changes = fix(text, PERSONA)
    assert fixed == expected
    assert "repeated_text" in {c.rule for c in changes}
    assert detect(fixed, PERSONA) == []


@pytest.mark.issue(23)
@pytest.mark.parametrize("request_text", ["write me a short poem with a refrain", "say 'stay calm' three times",
                                          "can you repeat that last line?", "give me a chant for the team"])
def test_repetition_the_user_asked_for_is_kept(request_text: str) -> None:
    text = "Stay calm and carry on. Stay calm and carry on. Stay calm and carry on."
    assert [h.rule for h in detect(text, PERSONA)] == ["repeated_text", "repeated_text"]
    assert detect(text, PERSONA, request=request_text) == []


@pytest.mark.issue(23)
def test_a_sentence_quoted_from_the_user_is_kept() -> None:
    request = "My manager said the deadline is not negotiable. What now?"
    text = "The deadline is not negotiable. Fine. Then scope down. The deadline is not negotiable, so cut features."
    looped = "The deadline is not negotiable. Fine. The deadline is not negotiable."
    assert detect(text, PERSONA) == []  # different sentences around the same phrase
    assert [h.rule for h in detect(looped, PERSONA)] == ["repeated_text"]
    assert detect(looped, PERSONA, request=request) == []


def _clean_packaged_responses() -> list[str]:
    """Responses the project labels clean: guard test rows without violations, the rewriter's targets, tone rows
    labelled not cheerleading."""
    texts = []
    for name, key, keep in (("guard_test.jsonl", "text", lambda r: not r["violations"]),
                            ("rewriter_train.jsonl", "target", lambda r: True),
                            ("rewriter_test.jsonl", "target", lambda r: True),
                            ("tone_train.jsonl", "text", lambda r: not r["cheerleader"])):
        for line in (data_dir() / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if keep(row) and row.get(key):
                texts.append(row[key])
    return texts


@pytest.mark.issue(23)
def test_no_false_flags_on_the_packaged_clean_responses() -> None:
    texts = _clean_packaged_responses()
    assert len(texts) > 1000
    repeated = [t for t in texts if any(h.rule == "repeated_text" for h in detect(t, PERSONA))]
    echoed = [t for t in texts if prompt_echo(t, PROMPT).is_echo]
    assert repeated == [] and echoed == []


@pytest.mark.issue(23)
def test_the_echo_from_the_issue_and_a_partial_echo_are_caught() -> None:
    echo = prompt_echo("The user's name is CJ; say \"you\", and use the name at most once.", PROMPT)
    assert echo.is_echo and echo.copied == echo.response_words == 15
    long_answer = ("A closure keeps the variables of the function that made it. " * 3
                   + "You are Penny, a companion. Be useful first. Your tone: dry, sarcastic wit; never a cheerleader.")
    assert prompt_echo(long_answer, PROMPT).is_echo  # 16 of the prompt's 51 words: a large part of it
    assert not prompt_echo("Use the name you like; say what you mean, and be useful first.", PROMPT).is_echo
    assert not prompt_echo("", PROMPT).is_echo


@pytest.mark.issue(23)
def test_quoting_search_results_is_not_an_echo() -> None:
    notes = render_notes(ResearchNotes(text="Bitcoin traded at 97,120 dollars at 14:00 UTC according to CoinDesk's index page."))
    answer = "Bitcoin traded at 97,120 dollars at 14:00 UTC according to CoinDesk's index page."
    assert prompt_echo(answer, build_system_prompt(PERSONA, None, notes)).is_echo  # why the layer leaves notes out
    assert not prompt_echo(answer, PROMPT).is_echo


@pytest.mark.issue(23)
def test_the_guard_falls_back_on_an_echo_with_a_logged_reason(caplog: pytest.LogCaptureFixture) -> None:
    guard = PersonalityGuard()  # not loaded: an echo is decided before the tone head would run
    echoed = "The user's name is CJ; say \"you\", and use the name at most once. You are Penny, a companion."
    turn = TurnContext.of("what's the bitcoin price?", response=echoed)
    with caplog.at_level(logging.WARNING):
        result = guard.run(TurnContext(turn.user_id, turn.message, response=echoed, instructions=PROMPT))
    assert result.rewritten_response == ECHO_FALLBACK and result.violations_detected == ("prompt_echo",)
    assert result.rewrite_status.startswith("fallback: the main LLM echoed its system prompt")
    assert result.changes_made[0].before == echoed
    assert "echoed its system prompt" in caplog.text
    fallback = guard.fallback(TurnContext(turn.user_id, turn.message, response=echoed, instructions=PROMPT), "timed out")
    assert fallback.rewritten_response == ECHO_FALLBACK  # the rules-only floor checks it too
    assert detect(ECHO_FALLBACK, PERSONA) == []


@pytest.mark.issue(23)
def test_the_guard_floor_collapses_a_loop() -> None:
    result = PersonalityGuard().rules_only(LOOP * 6, "tone head timed out", instructions=PROMPT)
    assert result.rewritten_response == LOOP.strip() and result.violations_detected == ("repeated_text",)


def _best_of(fn: object, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.issue(23)
@pytest.mark.parametrize("unit", [LOOP, "the answer is that " * 40 + "done. ",
                                  "Step one is to read. Step two is to write. The plan, the plan, the plan works. "])
def test_detection_is_linear(unit: str) -> None:
    """Eight times the text takes at most about eight times as long: the bound is 24 (quadratic gives 64), loose
    enough for a machine busy with other work (a 2x step with a bound of 3 failed at 3.4 under load)."""
    def text(n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    def check(t: str) -> None:
        detect(t, PERSONA)
        prompt_echo(t, PROMPT)

    small, large = text(10_000), text(80_000)
    _best_of(check, small, 1)
    assert _best_of(check, large) / _best_of(check, small, 5) < 24


@pytest.mark.issue(17)
@pytest.mark.parametrize("text", [
    "1. Check the logs. Restart the worker.\n2. Check the logs. Restart the database.",  # parallel list items
    "- Pixel: fast, bright screen. Overall, it deserves a B.\n- iPhone: dim screen, slow charging. Overall, it deserves a B.",
    "Expand it:\n\n4x^3 = 9x\n\nthen divide:\n\n4x^3 = 9x\n\nso x^2 = 9/4.",  # maths lines
    "c^2 = a^2 + b^2.\nBy the same argument,\nc^2 = a^2 + b^2.",
    "The chance is 1/6 + 1/6 + 1/6 + 1/6 = 4/6.",  # a run of numbers is not a looped phrase
    "Meet J.A.V.I.S. today. Later, J.A.V.I.S. again.",  # initials are not a five-word sentence
])
def test_parallel_lists_maths_and_initials_are_not_repeats(text: str) -> None:
    assert [h for h in detect(text, PERSONA) if h.rule == "repeated_text"] == []


@pytest.mark.issue(17)
def test_a_loop_inside_one_list_item_is_still_a_repeat() -> None:
    text = "- Anger is a secondary emotion. Anger is a secondary emotion.\n- Fear is older."
    assert fix(text, PERSONA)[0] == "- Anger is a secondary emotion.\n- Fear is older."
