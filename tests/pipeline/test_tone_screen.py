"""The linear tone screen: runtime inference equals the trained model, and it only ever clears clean text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from penny_slm.errors import NotLoadedError
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.guard import PersonalityGuard, ToneScorer, tone_prose
from penny_slm.pipeline.modules.tone_screen import SCREEN_ARTIFACT, ToneScreen, screen_features, screen_probability
from penny_slm.training.datasets import data_dir, load_tone_jsonl
from penny_slm.training.tone_screen import _matrix, fit_screen

CLEAN = "Fine. The loop was off by one; it works now."
GUSHING = "Oh my gosh, you're amazing, I'm so incredibly proud of you, superstar. You absolute legend."


def test_features_are_deterministic_and_see_words_pairs_pieces_and_bangs() -> None:
    a, b = screen_features("Great work!"), screen_features("Great work!")
    assert np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert not np.array_equal(screen_features("Great work!"), screen_features("Great work"))  # the "!" count
    assert len(screen_features("")) == 1  # only the bang bucket: the bias decides


def test_runtime_probability_equals_the_fitted_sklearn_model() -> None:
    linear = pytest.importorskip("sklearn.linear_model")
    rows = load_tone_jsonl(data_dir() / "tone_train.jsonl")[:300]
    texts = [r.text for r in rows]
    model = linear.LogisticRegression(C=4.0, max_iter=5000).fit(_matrix(texts), [r.labels["tone"] for r in rows])
    expected = model.predict_proba(_matrix(texts[:50]))[:, 1]
    got = [screen_probability(model.coef_[0], float(model.intercept_[0]), t) for t in texts[:50]]
    assert np.allclose(got, expected, atol=1e-9)


def test_clear_threshold_waves_no_dev_cheerleading_through() -> None:
    train, dev = (load_tone_jsonl(data_dir() / f"tone_{s}.jsonl") for s in ("train", "dev"))
    fitted = fit_screen(train, dev)
    p_dev = [screen_probability(fitted.weights, fitted.bias, r.text) for r in dev if r.labels["tone"]]
    assert 0 < fitted.clear_below <= 0.2 and min(p_dev) >= 2 * fitted.clear_below - 1e-9


def test_built_screen_clears_clean_prose_and_hands_cheerleading_to_the_head(built_registry: ModelRegistry) -> None:
    scorer = ToneScorer(max_tokens=256)
    scorer.load(built_registry)
    assert scorer.screen is not None and scorer.screen.model_version == built_registry.active_version(SCREEN_ARTIFACT)
    assert scorer.screened(CLEAN) and scorer.p_cheerleader(CLEAN) < scorer.screen.clear_below
    assert not scorer.screened(GUSHING) and scorer.p_cheerleader(GUSHING) >= 0.5  # the head's answer
    tone = built_registry.load("tone")
    head = ToneScorer(max_tokens=256)
    head.load_files(tone.file("model.onnx"), tone.file("tokenizer.json"), float(tone.manifest.details["temperature"]), "v")
    assert head.screen is None and head.p_cheerleader(GUSHING) == scorer.p_cheerleader(GUSHING)


def test_screen_clears_most_dry_responses_and_no_labelled_cheerleading(built_registry: ModelRegistry) -> None:
    scorer = ToneScorer(max_tokens=256)
    scorer.load(built_registry)
    rows = [r for split in ("dev", "test") for r in load_tone_jsonl(data_dir() / f"tone_{split}.jsonl")]
    assert not [r.text for r in rows if r.labels["tone"] and scorer.screened(r.text)]
    dry = [r.text for r in rows if not r.labels["tone"]]
    assert sum(map(scorer.screened, dry)) / len(dry) > 0.5  # otherwise the screen saves no time


NEUTRAL_START = ("The migration adds a nullable column first, backfills it in batches of ten thousand rows, and only then "
                 "adds the constraint, so the table is never locked for long and reads keep working during the change. ")
NEUTRAL_END = ("The backfill job logs its progress every batch, and it can be stopped and resumed safely. Run it after "
               "the deploy, then drop the old column in the next release once nothing reads it.")
PRAISE = ("Honestly, you're brilliant, this is such a genius idea. ", "You are amazing and I'm so incredibly proud of you. ")


def test_praise_buried_mid_answer_is_found_by_the_sentence_check(built_registry: ModelRegistry) -> None:
    scorer = ToneScorer(max_tokens=256)
    scorer.load(built_registry)
    buried = NEUTRAL_START + "".join(PRAISE) + NEUTRAL_END
    assert len(buried.split()) > 60  # the praise is outside the window's first 24 and last 12 words
    assert scorer._head([tone_prose(buried)])[0] < 0.5 <= scorer.p_cheerleader(buried)
    once = NEUTRAL_START + PRAISE[0] + NEUTRAL_END  # one warm sentence in a long answer is not cheerleading
    assert scorer.p_cheerleader(once) < 0.5


def test_guard_works_without_a_screen(built_registry: ModelRegistry, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(built_registry.root, root, ignore=shutil.ignore_patterns(SCREEN_ARTIFACT))
    active = json.loads((root / "active.json").read_text())
    (root / "active.json").write_text(json.dumps({k: v for k, v in active.items() if k != SCREEN_ARTIFACT}))
    guard = PersonalityGuard(rewriter_path="")
    guard.load(ModelRegistry(root))
    assert guard.tone.screen is None and "cheerleader_tone" in guard.predict(GUSHING).violations_detected


def test_unloaded_screen_says_how_to_build_it() -> None:
    with pytest.raises(NotLoadedError, match="models build --only tone-screen"):
        ToneScreen().p_cheerleader("hi")
