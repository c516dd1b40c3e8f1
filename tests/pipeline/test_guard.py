"""The personality guard with the real tone head (built once per session in conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from penny_slm.cli import main
from penny_slm.errors import InputError, NotLoadedError
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.guard import NO_REWRITER, PersonalityGuard
from penny_slm.rules.prohibitions import code_spans, detect
from penny_slm.training.datasets import data_dir
from penny_slm.training.evaluate import load_guard_jsonl


@pytest.fixture(scope="module")
def guard(built_registry: ModelRegistry) -> PersonalityGuard:
    g = PersonalityGuard()
    g.load(built_registry)
    return g


def test_result_has_the_framework_fields(guard: PersonalityGuard) -> None:
    result = guard.predict("*grins* Great question!! The answer is 42, CJ. Trust me, CJ.")
    d = result.to_dict()
    assert {"original_response", "violations_detected", "rewritten_response", "changes_made", "confidence"} <= set(d)
    assert set(result.violations_detected) >= {"asterisk_action", "excess_exclamation", "name_overuse"}
    assert result.rewritten_response == "Great question! The answer is 42, CJ. Trust me."
    assert all({"rule", "start", "end", "before", "after", "source"} <= set(c) for c in d["changes_made"])
    assert 0.0 <= result.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "Oh my gosh, you're amazing, I'm so incredibly proud of you, superstar.",
        "You're a total rockstar and this is the best code ever, keep shining.",
        "Yay, look at you go, you absolute legend, nothing can stop you now.",
    ],
)
def test_cheerleading_is_flagged_and_the_skipped_rewrite_is_reported(guard: PersonalityGuard, text: str) -> None:
    result = guard.predict(text)
    assert "cheerleader_tone" in result.violations_detected
    assert result.rewrite_status == NO_REWRITER
    assert result.confidence < 0.5


def test_gushing_sentences_around_an_answer_are_trimmed_without_a_model(guard: PersonalityGuard) -> None:
    answer = "The loop skips the last item; use `range(len(xs))` instead."
    text = f"Oh my gosh, you're amazing, I'm so incredibly proud of you. {answer} Keep shining, superstar, nobody does it better."
    result = guard.predict(text)
    assert result.rewrite_status == "trimmed" and result.rewritten_response == answer
    assert result.changes_made[-1].source == "trim" and result.confidence > 0.5
    assert guard.predict(result.rewritten_response).violations_detected == ()  # guarding twice changes nothing more


_PIECES = st.sampled_from([
    "Oh my gosh, you're amazing.", "Keep shining, superstar.", "You're crushing it, as always.", "I'm your biggest fan!",
    "The loop was off by one, so the last item was skipped.", "Your tests pass now.", "15% of 240 is 36.",
    "Fine.", "Try not to break it again.", "*grins*", "Grab a coffee first.", "c0ffee time.", "AMAZING!!!", "WOW.",
    "CJ,", "Trust me, CJ.", "Use `x != y` here.", "Set `*ptr` to 0.", "```py\nprint('WOW!!! coffee *grins* CJ CJ')\n```",
    "\n", "Do NOT paste the key.", "Run EXPLAIN on it.",
])


@settings(max_examples=60, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=10).map(" ".join))
def test_the_guard_output_is_clean_idempotent_and_keeps_code(guard: PersonalityGuard, text: str) -> None:
    """Issue 3's properties for the whole guard (rules, tone stage, trimming), not only the rule layer."""
    out = guard.predict(text).rewritten_response
    assert detect(out, guard.persona) == []
    assert guard.predict(out).rewritten_response == out
    assert [text[a:b] for a, b in code_spans(text)] == [out[a:b] for a, b in code_spans(out)]


# One sentence each, mixing hype with substance: trimming whole sentences cannot fix them, so the rewriter runs.
_ONE_SENTENCE_HYPE = st.sampled_from([
    "Oh my gosh, you absolute superstar, the tests pass now and you're amazing!!",
    "You're a total legend, the loop was off by one so the last item was skipped, keep shining!",
    "Wow, incredible work superstar, the index on the orders table fixed the slow query!",
    "Honestly you're the best, use `x != y` here and the check passes, so proud of you!!",
])


@pytest.mark.issue(24)
def test_the_guard_property_holds_through_the_rewriter(built_registry: ModelRegistry, slm_registry: ModelRegistry) -> None:
    """The same properties with a generative rewriter in the loop (the base SmolLM2 in its seat, so most of
    its rewrites are discarded and some kept): every returned text is clean and stable, code survives,
    and the rewriter really ran."""
    rewriting = PersonalityGuard(rewrite_timeout_s=20)
    rewriting.load(built_registry)
    assert rewriting.rewriter is not None
    rewriting.rewriter.load_dir(slm_registry.load("smollm2-135m").path, "base")
    statuses: list[str] = []

    @settings(max_examples=12, deadline=None)
    @given(st.lists(_ONE_SENTENCE_HYPE, min_size=1, max_size=2).map(" ".join))
    def holds(text: str) -> None:
        result = rewriting.predict(text)
        statuses.append(result.rewrite_status)
        out = result.rewritten_response
        assert detect(out, rewriting.persona) == []
        assert rewriting.predict(out).rewritten_response == out
        assert [text[a:b] for a, b in code_spans(text)] == [out[a:b] for a, b in code_spans(out)]

    holds()
    reached = [s for s in statuses if s == "rewritten" or s.startswith("discarded: ")]
    assert len(reached) >= 4, statuses  # the rewriter ran and its output was re-checked


def test_a_cheerleading_sentence_with_a_number_is_not_trimmed(guard: PersonalityGuard) -> None:
    result = guard.predict("You're a total rockstar, 3 bugs fixed in 10 minutes, keep shining superstar.")
    assert "cheerleader_tone" in result.violations_detected and result.rewrite_status == NO_REWRITER


@pytest.mark.parametrize(
    "text",
    [
        "Fine. The loop was off by one; it works now.",
        "Nice work. The fix is clean and the tests pass.",  # warm, not gushing
        "This approach is genuinely elegant: one pass, no extra memory.",  # measured technical enthusiasm
        "Use `x != y` and `*ptr`; the API returns JSON.",
    ],
)
def test_dry_and_measured_responses_pass_untouched(guard: PersonalityGuard, text: str) -> None:
    result = guard.predict(text)
    assert result.violations_detected == ()
    assert result.rewritten_response == text and result.rewrite_status == "not_needed"
    assert result.confidence > 0.5


def test_long_responses_are_scored_on_their_opening_and_closing_words(guard: PersonalityGuard) -> None:
    from penny_slm.pipeline.modules.guard import TONE_WINDOW_WORDS, tone_window

    body = " ".join(["The index on the orders table turns the scan into a lookup."] * 15)  # 165 words
    assert len(tone_window(body).split()) == sum(TONE_WINDOW_WORDS) + 1  # head, an ellipsis, tail
    gushing = f"Oh my gosh, you're amazing, you absolute superstar. {body} Keep shining, superstar, you're the best."
    assert "cheerleader_tone" in guard.predict(gushing).violations_detected
    assert "cheerleader_tone" not in guard.predict(f"Short version: {body}").violations_detected


def test_eval_guard_meets_the_issue_targets(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "guard", "--data", str(data_dir() / "guard_test.jsonl"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] >= 300
    assert out["absolute_recall"] >= 0.995
    assert out["clean_false_positive_rate"] <= 0.05  # includes the (small) tone head's false flags
    clean = sum(not row.violations for row in load_guard_jsonl(data_dir() / "guard_test.jsonl"))
    by_rule = out["clean_false_flags_by_rule"]  # every flag on a clean row, counted by the rule that raised it
    assert sum(by_rule.values()) >= round(out["clean_false_positive_rate"] * clean) and set(by_rule) <= set(out["per_violation"])
    assert out["rewritten_with_absolute_violation"] == 0
    assert set(out["latency_ms"]) == {"p50", "p95", "p99"}
    assert out["per_violation"]["coffee_reference"]["recall"] == 1.0


def test_guard_cli_prints_json(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guard", "Grab a coffee and let's dive in. Here's how closures work."]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["violations_detected"] == ["coffee_reference"] and out["rewritten_response"] == "Here's how closures work."


def test_bad_input_and_unloaded_use(guard: PersonalityGuard) -> None:
    with pytest.raises(InputError):
        guard.predict(None)  # type: ignore[arg-type]
    with pytest.raises(NotLoadedError):
        PersonalityGuard().predict("hello")
    assert guard.predict("").rewritten_response == ""


def test_fallback_is_rules_only_and_says_so() -> None:
    result = PersonalityGuard().rules_only("Wow!! *grins*", "tone head timed out")
    assert result.rewritten_response == "Wow!"
    assert result.rewrite_status == "skipped: tone head timed out; tone not checked"


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        ("Oh my gosh, you're amazing. The tests pass now. Keep shining, superstar.", "The tests pass now.", None),
        ("Honestly you're the GOAT. NEVER run that script as root. It deletes whatever path you give it.",
         "The Goat.", "rewrite dropped content"),
        ("Yes, that's the GIL. Threads won't speed up CPU-bound Python.",
         "The GIL is a feature in Python that allows other Python modules to run faster.", "rewrite dropped content"),
        ("You're a rockstar. 15% of 240 is 36.", "15% of 240 is 63.", "rewrite lost a number"),
        ("Wow, you legend. The container can't reach the database at localhost. Use the service name from the compose file.",
         "The container can't reach the database at localhost.", "rewrite dropped content"),  # a two-part answer cut to one
        ("Hey CJ, let's chat over a mocha. The interview is at 10. Leave by 9:15 and you'll be early. Go for it.",
         "The interview is at 10. Leave by 9:15 and you'll be early.", None),  # asides and greetings may go
        ("Wow, superstar. Use `x != y` here.", "Use `x == y` here.", "rewrite changed a code span"),
        ("Yay, look at you go. The build is green.", "The build is green and the deploy is scheduled for Friday morning.",
         "rewrite added content"),
    ],
)
def test_a_rewrite_must_keep_the_answer(guard: PersonalityGuard, before: str, after: str, problem: str | None) -> None:
    found = guard.rewrite_problem(before, after)
    assert (found is None) if problem is None else (found or "").startswith(problem)
