"""``penny-slm context`` and ``penny-slm eval context`` (the formats in docs/cli.md), run through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penny_slm.cli import main
from penny_slm.training.evaluate_context import readability, regression_block, slang_block

ROWS = [
    {"text": "ngl that ramen was bussin, no cap lol", "formality": 0.1, "technical_depth": 0.05,
     "slang": ["ngl", "bussin", "no cap"], "mood": "joy"},
    {"text": "Could you please explain how the query planner decides whether to use the index?", "formality": 0.8,
     "technical_depth": 0.8, "slang": [], "mood": "neutral"},
    {"text": "yeah gonna pick up the kids, then bed lol", "formality": 0.2, "technical_depth": 0.05, "slang": []},
    {"text": "Dear Penny, I would appreciate a summary of the committee's recommendations.", "formality": 0.9,
     "technical_depth": 0.3, "slang": []},
    {"text": "that track slaps fr", "formality": 0.1, "technical_depth": 0.05, "slang": ["slaps", "fr"]},
]


@pytest.fixture(autouse=True)
def no_mood_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty models folder: these tests are about the rules, whatever the developer has built (test_mood.py runs
    the mood head)."""
    monkeypatch.setenv("PENNY_SLM_MODELS", str(tmp_path / "no-models"))


def test_context_prints_the_context_update(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["context", "lowkey tired rn, this week was mid"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"slang_detected", "tone_shift", "context_markers", "formality_level", "technical_depth", "updates"}
    assert [s["term"] for s in out["slang_detected"]] == ["lowkey", "mid"]
    assert out["context_markers"]["time_of_day"] in {"night", "morning", "afternoon", "evening"}
    assert {u["key"] for u in out["updates"]} >= {"formality_level", "technical_depth", "slang:lowkey", "slang:mid"}


def test_eval_context_gives_a_block_per_label_and_baselines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "ctx.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    assert main(["eval", "context", "--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 and set(out["baseline"]) == {"formality", "technical_depth", "mood", "slang"}
    assert out["formality"]["n"] == 5 and out["formality"]["pearson"] > 0.8 and out["formality"]["spearman"] > 0.8
    assert out["slang"] == {"n": 5, "precision": 1.0, "recall": 1.0, "f1": 1.0, "sentence_precision": 1.0,
                            "sentence_recall": 1.0}
    assert out["mood"]["macro_f1"] is None and "not measured" in out["mood"]["note"]  # no mood head: no figure
    assert out["baseline"]["mood"]["per_class"]["neutral"]["recall"] == 1.0  # majority class
    assert set(out["latency_ms"]) == {"p50", "p95", "p99"}


def test_bad_rows_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "hi", "mood": "happy"}\n')
    assert main(["eval", "context", "--data", str(data), "--json"]) == 2
    assert "bad.jsonl:1: mood must be one of" in capsys.readouterr().err
    data.write_text('{"text": "hi", "formality": 1, "pair": ["a"]}\n')
    assert main(["eval", "context", "--data", str(data), "--json"]) == 2
    assert "bad.jsonl:1: pair must be a string or an integer id" in capsys.readouterr().err


def test_pairs_are_scored_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pairs.jsonl"
    rows = [{"text": "I would appreciate your assistance with the enclosed documentation.", "formality": 1, "pair": "p1"},
            {"text": "yo can u help w this lol", "formality": 0, "pair": "p1"},
            {"text": "Kindly confirm receipt of the payment.", "formality": 1, "pair": "p2"},
            {"text": "ngl did u get the cash??", "formality": 0, "pair": "p2"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "context", "--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["formality"]["pairs"] == 2 and out["formality"]["paired_accuracy"] == 1.0
    assert out["baseline"]["formality"]["pairs"] == 2


def test_metric_blocks() -> None:
    assert regression_block([0.1, 0.5, 0.9], [0.2, 0.4, 0.8]) == {"n": 3, "pearson": 0.982, "spearman": 1.0, "mae": 0.1}
    # pairs: (1 over 0) right, wrong, tied; a pair missing a member and unpaired rows are not counted
    paired = regression_block([1, 0, 1, 0, 1, 0, 1, 0.5], [0.9, 0.1, 0.2, 0.6, 0.5, 0.5, 0.3, 0.1],
                              ["a", "a", "b", "b", "c", "c", "d", None])
    assert paired["pairs"] == 3 and paired["paired_accuracy"] == 0.5
    # the less formal text first: rank comes from the labels, not from the order
    assert regression_block([0, 1, 0, 1], [0.2, 0.7, 0.9, 0.4], [7, 7, 8, 8])["paired_accuracy"] == 0.5
    assert slang_block([["fr"], [], ["no cap", "ngl"]], [["FR"], ["bet"], ["ngl"]]) == {
        "n": 3, "precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "sentence_precision": 0.6667, "sentence_recall": 1.0}
    # a found span covering the annotated term is a match (spelling with a hyphen, a space or none; "cap" of "no cap");
    # a found term inside a longer annotated one is not, and one found term matches one annotated term
    matched = slang_block([["cap"], ["glow-up"], ["brainrot"], ["secure the bag"], ["cap", "no cap"]],
                          [["no cap"], ["Glow up"], ["brain rot"], ["bag"], ["no cap"]])
    assert (matched["precision"], matched["recall"]) == (0.8, round(4 / 6, 4))
    assert readability("Go.") < readability("Institutional considerations necessitate comprehensive reorganisation.")


def test_the_bench_has_a_context_row() -> None:
    from penny_slm.pipeline.bench import _worker

    row = _worker("context", 1, 30, None)
    assert row["n"] == 30 and 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p99"]
    assert row["model_version"] == "context-rules-3"
