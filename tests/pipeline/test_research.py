"""The research classifier on a real exported int8 model (built once per session in conftest)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from penny_slm.errors import InputError, NotLoadedError
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.research import ResearchClassifier
from penny_slm.results import CATEGORIES, ResearchClassification
from penny_slm.training.datasets import data_dir, load_research_jsonl
from penny_slm.training.evaluate import evaluate_research


@pytest.fixture(scope="module")
def clf(built_registry: ModelRegistry) -> ResearchClassifier:
    classifier = ResearchClassifier(confidence_threshold=0.6)
    classifier.load(built_registry)
    return classifier


@pytest.mark.parametrize(
    ("text", "needs_research"),
    [
        ("how much is ethereum worth right now", True),
        ("will it snow in denver tomorrow", True),
        ("did the celtics win last night", True),
        ("what is the newest version of django", True),
        ("fact check: is the bridge on 5th street closed for good", True),
        ("write a python function that returns today's date", False),  # the keyword matcher's trap
        ("if a laptop's price is $900 and it's 15% off, what do I pay", False),
        ("explain how vaccines work", False),
        ("write a limerick about a sleepy owl", False),
        ("i'm feeling really anxious about my exam", False),
    ],
)
def test_obvious_cases(clf: ResearchClassifier, text: str, needs_research: bool) -> None:
    assert clf.predict(text).needs_research is needs_research


def test_result_has_the_framework_fields(clf: ResearchClassifier) -> None:
    result = clf.predict("what's the bitcoin price today")
    assert isinstance(result, ResearchClassification)
    assert set(result.to_dict()) == {"needs_research", "confidence", "reasoning", "category"}
    assert 0.0 <= result.confidence <= 1.0
    assert result.category in CATEGORIES
    assert "p(search)=" in result.reasoning and "cue 'bitcoin'" in result.reasoning


def test_test_split_accuracy_and_fewer_false_positives_than_keywords(clf: ResearchClassifier) -> None:
    rows = load_research_jsonl(data_dir() / "research_test.jsonl")
    result = evaluate_research(clf.predict, rows)
    assert result["accuracy"] >= 0.9
    assert result["false_positives"] < result["baseline"]["false_positives"]


def test_threshold_one_means_always_search_when_unsure(clf: ResearchClassifier, built_registry: ModelRegistry) -> None:
    cautious = ResearchClassifier(confidence_threshold=1.0)
    cautious.load(built_registry)
    result = cautious.predict("write a haiku about autumn")
    assert result.needs_research is True
    assert result.reasoning.startswith("Unsure") and "1.00 threshold" in result.reasoning
    assert result.confidence < 0.5  # it is P(search was needed), which the model thinks is low
    assert clf.predict("write a haiku about autumn").needs_research is False


@pytest.mark.parametrize("text", ["", "   ", "\n\t  "])
def test_empty_input_is_a_safe_no(clf: ResearchClassifier, text: str) -> None:
    result = clf.predict(text)
    assert result == ResearchClassification(False, 1.0, "Empty message: nothing to look up.", "general")


def test_over_long_input_is_truncated_and_says_so(clf: ResearchClassifier) -> None:
    result = clf.predict("will it rain in paris tomorrow? " + "I have been planning this trip for months. " * 60)
    assert "only the first 128 tokens" in result.reasoning
    assert 0.0 <= result.confidence <= 1.0
    assert "only the first" not in clf.predict("will it rain in paris tomorrow?").reasoning


@pytest.mark.parametrize("text", ["price\x00 of\x07 gold", "bad \ud800 surrogate today", "¿Qué tiempo hace hoy en Madrid?",
                                  "今日の東京の天気は？", "🙂🙂🙂", "ｗｈａｔ'ｓ ｔｈｅ ｎｅｗｓ"])
def test_odd_input_gives_a_result(clf: ResearchClassifier, text: str) -> None:
    result = clf.predict(text)
    assert 0.0 <= result.confidence <= 1.0 and result.category in CATEGORIES


def test_non_string_is_a_typed_error(clf: ResearchClassifier) -> None:
    with pytest.raises(InputError):
        clf.predict(123)  # type: ignore[arg-type]


def test_batch_agrees_with_single(clf: ResearchClassifier) -> None:
    """Dynamic int8 quantizes activations with one scale per batch, so confidences move a little with the
    batch's other rows (measured: 0.9891 batched vs 0.9987 alone); decisions on clear cases do not."""
    texts = ["btc price?", "", "explain recursion", "who won the match today"]
    batched, single = clf.predict_batch(list(texts)), [clf.predict(t) for t in texts]
    assert [(r.needs_research, r.category) for r in batched] == [(r.needs_research, r.category) for r in single]
    assert all(abs(b.confidence - s.confidence) < 0.05 for b, s in zip(batched, single))


def test_use_before_load_is_a_typed_error() -> None:
    with pytest.raises(NotLoadedError, match="before load"):
        ResearchClassifier().predict("hi")


def test_fallback_is_the_keyword_matcher() -> None:
    result = ResearchClassifier().keyword_fallback("latest news please", "timeout after 20 ms")
    assert result.needs_research and result.reasoning.startswith("timeout after 20 ms; keyword matcher")


def test_runtime_path_never_imports_torch(built_registry: ModelRegistry) -> None:
    code = (
        "import sys; from penny_slm.pipeline.model_registry import ModelRegistry;"
        "from penny_slm.pipeline.modules.research import ResearchClassifier;"
        f"c = ResearchClassifier(); c.load(ModelRegistry({str(built_registry.root)!r}));"
        "c.predict('btc price?');"
        "bad = [m for m in ('torch', 'transformers', 'optimum', 'sklearn') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
