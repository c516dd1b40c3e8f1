"""The mood head in the context step (issue 18): the running-mood rule, a real tiny mood artifact built, exported and
loaded by the tracker, the profile updates and the prompt line it may add, and ``eval context`` reporting it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from penny_slm.cli import main
from penny_slm.config import load_persona
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import (
    MOOD_KEYS,
    TRACKER_VERSION,
    ContextTracker,
    learn_mood,
    stored_mix,
)
from penny_slm.pipeline.prompt import MOOD_BAR, MOOD_LINES, build_system_prompt, mood_line
from penny_slm.pipeline.sync import ProfileContext
from penny_slm.results import MOODS, Mood, PreferenceUpdate, ToneShift
from penny_slm.training.datasets import Example
from penny_slm.training.splits import TrainingData, cap_per_class

ROWS: dict[Mood, tuple[str, ...]] = {
    "anger": ("This is outrageous, I am furious with them.", "Stop ignoring me, I am so angry right now.",
              "I hate how they lied to my face again.", "How dare you cancel on me twice, unbelievable."),
    "disgust": ("Ugh, that smell is revolting.", "That is disgusting, there was hair in my soup.",
                "Gross, the fridge is full of mould.", "That video made me sick to my stomach, so vile."),
    "fear": ("I am terrified of the surgery tomorrow.", "I'm scared someone is following me home.",
             "What if I fail and lose everything, I'm so afraid.", "I'm really anxious about the biopsy results."),
    "joy": ("I got the job, I am so happy!", "Best day ever, we won the final!",
            "I love this so much, thank you!", "We're getting married, I'm overjoyed."),
    "sadness": ("My dog died this morning and I can't stop crying.", "I feel so lonely since she left.",
                "I miss my grandma so much.", "Everything feels hopeless and empty lately."),
    "surprise": ("Wait, what? I never expected that!", "No way, you're kidding me?!",
                 "Wow, I did not see that coming.", "Whoa, they're back already? That's unexpected."),
    "neutral": ("The meeting is at three on Tuesday.", "Please send the report by Friday.",
                "The train leaves from platform two.", "I bought milk and bread at the shop."),
}
EXAMPLES = [Example(text, {"mood": MOODS.index(mood)}) for mood, texts in ROWS.items() for text in texts]


@pytest.fixture(scope="session")
def mood_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelRegistry]:
    """A real mood artifact: MiniLM fine-tuned on 28 hand-written rows (40 epochs of one step), exported, quantized (or
    fp32 where the parity gate refuses int8), evaluated and registered by the same build as the real one (~1 min)."""
    from penny_slm.export import build

    data = TrainingData(EXAMPLES, EXAMPLES, EXAMPLES, EXAMPLES[::2], "tiny-mood", {"hand-written": "28 rows"})
    spec = dataclasses.replace(build.SPECS["mood"], data=lambda _path: data, epochs=40)
    registry = ModelRegistry(tmp_path_factory.mktemp("mood-models"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(build.SPECS, "mood", spec)
        build.build_artifact(registry, "mood", build.BuildSettings(), log=lambda _msg: None)
    yield registry


@pytest.fixture(scope="session")
def tracker(mood_registry: ModelRegistry) -> ContextTracker:
    t = ContextTracker()
    t.load(mood_registry)
    return t


def probs(mood: Mood, p: float = 0.9) -> dict[Mood, float]:
    return {m: (p if m == mood else (1 - p) / (len(MOODS) - 1)) for m in MOODS}


def test_the_running_mood_starts_uniform_and_follows_a_pattern() -> None:
    first = learn_mood(None, None, probs("sadness"))
    assert first.evidence == 1 and first.mood == "sadness"
    assert first.mix["sadness"] == pytest.approx(1 / 7 + (0.9 - 1 / 7) / 5, abs=1e-3)  # a fifth of the way
    assert first.departure == pytest.approx(0.5 * sum(abs(probs("sadness")[m] - 1 / 7) for m in MOODS), abs=1e-4)
    est = first
    for _ in range(9):
        est = learn_mood(est.mix, est.confidence, probs("sadness"))
    assert est.mood == "sadness" and est.mix["sadness"] > 0.6 and est.evidence == pytest.approx(10, abs=0.01)
    same = learn_mood(est.mix, est.confidence, probs("sadness"))
    other = learn_mood(est.mix, est.confidence, probs("joy"))
    assert same.departure < 0.25 < other.departure  # one joyful message departs from a sad running mood
    assert other.mood == "sadness"  # ... and moves it little
    assert sum(other.mix.values()) == pytest.approx(1.0, abs=0.01)


def test_a_stored_mix_must_cover_every_mood() -> None:
    mix = {m: 1 / 7 for m in MOODS}
    assert stored_mix(mix) == mix
    assert stored_mix({"joy": 1.0}) is None and stored_mix("joy") is None and stored_mix({**mix, "joy": "x"}) is None


def test_cap_per_class_is_seeded_and_keeps_small_classes() -> None:
    rows = [{"text": str(i), "mood": "joy" if i % 10 else "fear"} for i in range(100)]
    kept = cap_per_class(rows, "mood", 20, seed=13)
    assert [r["mood"] for r in kept].count("joy") == 20 and [r["mood"] for r in kept].count("fear") == 10
    assert kept == cap_per_class(rows, "mood", 20, seed=13) != cap_per_class(rows, "mood", 20, seed=14)


def test_the_built_head_is_registered_with_its_gate_and_held_out_figures(mood_registry: ModelRegistry) -> None:
    manifest = mood_registry.get_active_version("mood")
    assert manifest.gate_metrics == ("macro_f1", "real_macro_f1")
    assert manifest.details["heads"] == {"mood": list(MOODS)}
    assert manifest.details["train_settings"]["max_length"] == 64 and manifest.details["train_settings"]["class_weight"] == "balanced"
    assert manifest.details["approaches"] == ["finetune"]  # the frozen probe is not trained for mood
    test = manifest.metrics["test"]
    assert {"accuracy", "macro_f1", "per_class", "ece", "latency_ms", "baseline", "real_macro_f1"} <= set(test)
    assert test["accuracy"] > 0.5  # 28 rows it trained on, 40 one-step epochs: it learned them (chance: 1/7)
    assert {f"epoch{i}_macro_f1" for i in range(1, 41)} <= set(manifest.metrics["dev"])


def test_the_tracker_fills_mood_and_tone_shift(tracker: ContextTracker) -> None:
    assert tracker.model_version.startswith(f"{TRACKER_VERSION}+mood-v")
    update = tracker.run(TurnContext.of("My dog died this morning and I can't stop crying."))
    shift = update.tone_shift
    assert isinstance(shift, ToneShift) and shift.mood in MOODS and 0 < shift.confidence <= 1
    assert update.context_markers["mood"] == shift.mood and update.context_markers["mood_confidence"] == shift.confidence
    assert shift.messages == 0 and 0 <= shift.departure <= 1 and "mood by the mood v" in update.note
    mood_updates = {u.key: u for u in update.updates if isinstance(u, PreferenceUpdate) and u.key in MOOD_KEYS}
    assert set(mood_updates) == set(MOOD_KEYS)
    assert mood_updates["mood"].new == shift.running_mood and mood_updates["mood"].model_version.startswith("mood-v")
    mix = mood_updates["mood_mix"].new
    assert isinstance(mix, dict) and set(mix) == set(MOODS) and sum(mix.values()) == pytest.approx(1.0, abs=0.01)
    assert json.dumps(update.to_dict())  # the CLI prints it


def test_the_running_mood_is_read_back_from_the_profile(tracker: ContextTracker) -> None:
    first = tracker.run(TurnContext.of("I miss my grandma so much."))
    learned = {u.key: u for u in first.updates if isinstance(u, PreferenceUpdate)}
    profile = ProfileContext("u", {k: learned[k].new for k in MOOD_KEYS}, {k: learned[k].confidence for k in MOOD_KEYS},
                             {}, 1, 0)
    second = tracker.run(dataclasses.replace(TurnContext.of("I miss my grandma so much."), profile=profile))
    assert second.tone_shift is not None and first.tone_shift is not None
    assert second.tone_shift.messages == 1
    assert second.tone_shift.departure < first.tone_shift.departure  # the same mood again departs less


def test_without_the_artifact_the_step_has_no_mood(tmp_path: Path) -> None:
    plain = ContextTracker()
    plain.load(ModelRegistry(tmp_path))
    update = plain.run(TurnContext.of("I am terrified of the surgery tomorrow."))
    assert update.tone_shift is None and update.context_markers["mood"] is None and "not built" in update.note
    assert plain.model_version == TRACKER_VERSION
    assert not any(isinstance(u, PreferenceUpdate) and u.key in MOOD_KEYS for u in update.updates)


def shift(mood: Mood, confidence: float) -> ToneShift:
    return ToneShift(mood, confidence, mood, 0.5, 0.3, 2.0)


def test_the_prompt_takes_one_fixed_line_for_a_confident_hard_mood() -> None:
    persona = load_persona()
    plain = build_system_prompt(persona, None)
    for mood in MOODS:
        confident = build_system_prompt(persona, None, mood=shift(mood, MOOD_BAR))
        if mood in MOOD_LINES:
            assert confident == plain + "\n" + MOOD_LINES[mood]
        else:  # joy, surprise and neutral change nothing
            assert confident == plain
        assert build_system_prompt(persona, None, mood=shift(mood, MOOD_BAR - 0.01)) == plain  # below the bar
        assert mood_line(shift(mood, 0.99)) in (MOOD_LINES.get(mood),)
    for line in MOOD_LINES.values():
        assert not any(m in line for m in MOODS)  # neither the label nor a number is shown


def test_the_running_mood_never_reaches_the_prompt_as_a_value() -> None:
    profile = ProfileContext("u", {"mood": "sadness", "mood_mix": {m: 1 / 7 for m in MOODS}}, {"mood": 0.9, "mood_mix": 0.9},
                             {}, 3, 0)
    prompt = build_system_prompt(load_persona(), profile)
    assert "sadness" not in prompt and "mood" not in prompt


def test_eval_context_reports_the_head(mood_registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mood.jsonl"
    data.write_text("\n".join(json.dumps({"text": text, "mood": mood}) for mood, texts in ROWS.items() for text in texts))
    monkeypatch.setenv("PENNY_SLM_MODELS", str(mood_registry.root))  # what --models-dir sets; undone after the test
    assert main(["--models-dir", str(mood_registry.root), "eval", "context", "--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"].startswith(f"{TRACKER_VERSION}+mood-v")
    assert out["mood"]["n"] == 28 and out["mood"]["macro_f1"] > out["baseline"]["mood"]["macro_f1"]
    assert set(out["mood"]["per_class"]) == set(MOODS)


def test_models_build_goes_on_without_mood_when_no_source_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PENNY_SLM_MODELS", str(tmp_path))  # the test session's cache is empty (conftest)
    assert main(["--models-dir", str(tmp_path), "models", "build", "--only", "mood"]) == 0
    assert "mood: not built: its training sources are not cached" in capsys.readouterr().out
    assert ModelRegistry(tmp_path).active_version("mood") is None


def test_training_settings_enter_the_build_key_only_where_set() -> None:
    """An artifact without its own training settings keeps the key it had before they existed; one with them (every
    encoder head since TUNED_LAYERS) gets a new key, so an old build counts as out of date."""
    import dataclasses
    import hashlib

    from penny_slm.export.build import BUILD_FORMAT, SPECS, BuildSettings

    settings = BuildSettings()
    for name in ("research", "tone"):
        plain = dataclasses.replace(SPECS[name], train=())
        old = json.dumps({"format": BUILD_FORMAT, "task": name, "data": "d", "approaches": settings.approaches_for(plain),
                          "epochs": settings.epochs_for(plain), "seed": 13, "limit_rows": 0}, sort_keys=True)
        assert settings.key(plain, "d") == hashlib.sha256(old.encode()).hexdigest()
        assert settings.key(SPECS[name], "d") != settings.key(plain, "d")
