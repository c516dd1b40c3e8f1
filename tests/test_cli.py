"""CLI contracts: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from penny_slm.cli import main
from penny_slm.training.datasets import data_dir


def test_classify_prints_framework_json(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "what's the bitcoin price right now"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["needs_research"] is True and set(out) == {"needs_research", "confidence", "reasoning", "category"}


def test_eval_research_json_contract(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "research", "--data", str(data_dir() / "research_test.jsonl"), "--json", "--out", str(tmp_path / "r")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    keys = {"n", "accuracy", "precision", "recall", "f1", "false_positive_rate", "category_accuracy", "latency_ms"}
    assert keys <= set(out) and keys <= set(out["baseline"])
    assert set(out["latency_ms"]) == {"p50", "p95", "p99"}
    assert out["n"] == len((data_dir() / "research_test.jsonl").read_text().splitlines()) and out["accuracy"] >= 0.9
    assert (tmp_path / "r" / "report.md").read_text().startswith("# Research classifier evaluation")
    assert (tmp_path / "r" / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_without_category_column(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "btc price now", "needs_research": true}\n{"text": "write a poem", "needs_research": false}\n')
    assert main(["eval", "research", "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["category_accuracy"] is None


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"text": "hi"}', "'needs_research' must be true or false"),
        ('{"text": "hi", "needs_research": true, "category": "gossip"}', "unknown category 'gossip'"),
    ],
)
def test_eval_bad_data_exits_2_with_one_line(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             line: str, fragment: str) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(line + "\n")
    assert main(["eval", "research", "--data", str(data), "--json"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "bad.jsonl:1" in err


def test_missing_models_exit_2_and_say_how_to_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--models-dir", str(tmp_path / "empty"), "classify", "hi"]) == 2
    assert "penny-slm models build" in capsys.readouterr().err


def test_rollback_unknown_version_exit_2(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "rollback", "research", "v99"]) == 2
    assert "known versions: v1" in capsys.readouterr().err


def test_recording_a_partial_rewriter_eval_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The gate compares builds with recorded metrics, so only a full run on the packaged split may be recorded."""
    assert main(["--models-dir", str(tmp_path), "eval", "rewriter", "--limit", "4", "--record"]) == 2
    assert "drop --data and --limit" in capsys.readouterr().err


def test_models_list_json(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "research" and rows[0]["active"] is True
    assert set(rows[0]["gate_metrics"]) == {"accuracy", "f1"} and all(0 < v <= 1 for v in rows[0]["gate_metrics"].values())


def test_console_script_and_argparse_errors(models_env: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "penny_slm.cli", "classify", "explain recursion"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and json.loads(ok.stdout)["needs_research"] is False
    bad = subprocess.run([sys.executable, "-m", "penny_slm.cli", "classify"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2


def test_bench_json(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", "--n", "40"]) == 0
    out = json.loads(capsys.readouterr().out)
    research, guard = out["modules"]["research"], out["modules"]["guard"]
    assert [r["threads"] for r in research] == [r["threads"] for r in guard] == [1, 2]
    for run in research:
        assert run["latency_ms"]["p50"] > 0 and run["peak_rss_mb"] > 0 and run["batch32_queries_per_s"] > 0
    for run in guard:
        assert run["words"][0] >= 150
        assert 0 < run["rules_detect_and_fix_ms"]["p50"] and 0 < run["tone_head_ms"]["violating"]["p50"] <= run["guard_total_ms"]["p99"]
        assert run["yardstick_encoder_pass_ms"]["tokens"] == 18 and run["yardstick_encoder_pass_ms"]["p50"] > 0
        assert max(run["tone_head_ms"]["window_tokens"]) < 64  # the head scores a window, not all 150+ words
        tone = run["tone_ms"]  # the screen answers part of the guard test set; the head scores the rest
        assert tone["screen_version"] == "v1" and 0 < tone["guard_test_set_screened"] < 1
    assert not any(run["torch_imported"] for run in research + guard)
    layer = out["modules"]["layer"]  # one SLMLayer turn per call, main LLM injected and excluded
    assert [r["threads"] for r in layer] == [1, 2] and all(r["slm_added_ms"]["p50"] > 0 for r in layer)
    assert all(0 < r["pre_llm_ms"]["p50"] <= r["slm_added_ms"]["p50"] for r in layer)
    assert all(r["paced"]["pause_s"] > 0 and 0 < r["paced"]["pre_llm_ms"]["p50"] <= r["paced"]["slm_added_ms"]["p50"] for r in layer)
    assert all(r["modules"] == ["context", "guard", "research"] and r["torch_imported"] is False for r in layer)


@pytest.mark.issue(24)
@pytest.mark.parametrize("argv", [
    [],
    ["classify"],
    ["bench", "--n", "many"],
    ["models", "build", "--only", "everything"],
    ["--config", "/nonexistent/slm_config.json", "classify", "hi"],
    ["eval", "research", "--data", "/nonexistent/rows.jsonl"],
    ["eval", "research", "--data", "/"],
    ["eval", "guard", "--data", "/nonexistent/rows.jsonl"],
    ["eval", "drift", "--data", "/nonexistent/rows.jsonl"],
    ["drift", "--history", "/nonexistent/turns.jsonl"],
    ["classify", "hi", "--threshold", "2"],
    ["models", "rollback", "nothing", "v1"],
    ["data", "fetch", "--only", "no-such-source"],
    ["data", "fetch", "--from", "/nonexistent/mirrors"],
    ["data", "list", "--manifest", "/nonexistent/sources.json"],
    ["data", "check", "--against", "/nonexistent/rows.jsonl"],
    ["data", "check"],
])
def test_every_bad_input_exits_2_with_one_line(argv: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "penny_slm.cli", "--models-dir", str(tmp_path), *argv],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("penny-slm: error: "), proc.stderr


@pytest.mark.issue(24)
def test_a_missing_training_extra_exits_2_with_the_install_hint(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None; from penny_slm.cli import main; "
            f"sys.exit(main(['--models-dir', {str(tmp_path)!r}, 'models', 'build', '--only', 'research']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "torch is needed for this command" in proc.stderr and "pip install -e '.[train]'" in proc.stderr


@pytest.mark.issue(24)
def test_one_refused_artifact_does_not_stop_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The gate refuses ``research`` (injected); ``tone-screen`` still builds, for real, after it."""
    from penny_slm.errors import RegistryError
    from penny_slm.export import build

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RegistryError("research v2 was stored but not activated: it fails the gate against v1 on accuracy")

    monkeypatch.setattr(build, "build_artifact", refuse)
    code = main(["--models-dir", str(tmp_path / "m"), "models", "build", "--only", "research", "--only", "tone-screen"])
    out, err = capsys.readouterr()
    assert "research: research v2 was stored but not activated" in err and "no active version of research" in err
    assert code == 1  # research has no active version at all
    from penny_slm.pipeline.model_registry import ModelRegistry

    assert ModelRegistry(tmp_path / "m").active_version("tone-screen") == "v1"
    # issue 23: the plan first, then a running total after each artifact
    assert "[build] plan (" in out and "[build] total ~" in out and "[build] 1/2 done: research" in out
    assert "[build] 2/2 done: tone-screen built in" in out and "nothing missing left" in out
    assert ModelRegistry(tmp_path / "m").get_active_version("tone-screen").details["build_seconds"] > 0


@pytest.mark.issue(23)
def test_a_quick_build_trains_a_frozen_research_head_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``--quick`` builds a real frozen-encoder research head, marked quick; run again it leaves the active head alone."""
    monkeypatch.delenv("PENNY_SLM_MODELS", raising=False)  # main() sets it from --models-dir; undone after the test
    from penny_slm.export.plan import QUICK
    from penny_slm.pipeline.model_registry import ModelRegistry

    models = ["--models-dir", str(tmp_path / "m"), "models", "build", "--only", "research", "--limit-rows", "200"]
    assert main([*models, "--quick"]) == 0
    manifest = ModelRegistry(tmp_path / "m").get_active_version("research")
    assert manifest.details[QUICK] is True and manifest.details["approach"] == "frozen"
    assert manifest.details["approaches"] == ["frozen"] and manifest.details["build_seconds"] > 0
    capsys.readouterr()
    assert main([*models, "--quick"]) == 0
    assert "research: v1 is active; --quick builds only heads that have none" in capsys.readouterr().out
    assert ModelRegistry(tmp_path / "m").list_versions("research")[-1].version == "v1"
    assert main([*models, "--quick", "--approach", "finetune"]) == 2
    assert "--quick trains the frozen approach only" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["research", "guard"])
def test_real_world_evals_take_one_part_option(task: str) -> None:
    """``--part`` means the same halves for every task: dev and test are disjoint, stable, and make up all."""
    from penny_slm.cli import _real_part, build_parser

    args = build_parser().parse_args(["eval", task, "--real", "--part", "dev"])
    assert args.part == "dev" and build_parser().parse_args(["eval", task, "--real"]).part == "test"
    rows = [type("Row", (), {"text": f"held-out response number {i}"})() for i in range(400)]
    dev, test, every = (_real_part(rows, part) for part in ("dev", "test", "all"))
    assert dev and test and not {id(r) for r in dev} & {id(r) for r in test}
    assert sorted(map(id, dev + test)) == sorted(map(id, every)) and _real_part(rows, "dev") == dev
