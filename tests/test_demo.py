"""The demo's script (issue 23): recorded replies carry the slips the guard exists to fix, and the guard's work is
printed with spans. These run on the rules alone; the whole demo on real heads is in tests/pipeline/test_layer.py."""

from __future__ import annotations

import pytest

from penny_slm.config import load_persona
from penny_slm.demo import SCRIPT, guard_lines, recorded_llm
from penny_slm.pipeline.modules.guard import PersonalityGuard
from penny_slm.rules.prohibitions import detect

PERSONA = load_persona()


@pytest.mark.issue(23)
def test_the_recorded_replies_carry_every_slip_the_rules_fix() -> None:
    found = {h.rule for turn in SCRIPT for h in detect(turn.recorded_reply, PERSONA, request=turn.message)}
    assert found == {"coffee_reference", "asterisk_action", "excess_exclamation", "caps_enthusiasm", "name_overuse",
                     "repeated_text"}
    assert any(not detect(t.recorded_reply, PERSONA, request=t.message) for t in SCRIPT)  # one passes untouched


def test_recorded_llm_replays_the_reply_for_each_message() -> None:
    llm = recorded_llm()
    assert [llm("any system prompt", t.message) for t in SCRIPT] == [t.recorded_reply for t in SCRIPT]


@pytest.mark.issue(23)
def test_guard_lines_show_each_fix_with_its_span_in_the_reply() -> None:
    reply = SCRIPT[1].recorded_reply  # the bitcoin answer with a sentence said twice
    result = PersonalityGuard().rules_only(reply, "shown without the tone head")
    (line,) = guard_lines(result)
    change = result.changes_made[0]
    assert line.split()[:2] == ["repeated_text", f"[{change.start}:{change.end}]"] and line.endswith("→ (removed)")
    assert reply[change.start:change.end] == change.before and "volatile" in change.before
    assert result.rewritten_response.count("Crypto prices are extremely volatile") == 1


def test_a_bad_llm_url_is_refused_before_the_demo_starts() -> None:
    from penny_slm.cli import main

    assert main(["demo", "--llm", "ftp://example.org/v1"]) == 2


@pytest.mark.issue(23)
def test_the_header_says_when_a_head_is_a_quick_build(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A version from ``models build --quick`` is named as such; a full build's is not."""
    import tempfile
    from pathlib import Path

    from penny_slm.demo import _quick_note
    from penny_slm.export.plan import QUICK
    from penny_slm.pipeline.model_registry import ModelRegistry

    registry = ModelRegistry(tmp_path)
    for quick in (True, False):
        staging = Path(tempfile.mkdtemp(dir=tmp_path))
        (staging / "model.onnx").write_bytes(b"weights")
        registry.register_version(staging, {"name": "research", "build_key": str(quick), "data_hash": "",
                                            "metrics": {"test": {"accuracy": 1.0}}, "gate_metrics": ("accuracy",),
                                            "details": {QUICK: quick}}, force=True)
    assert "quick: frozen encoder" in _quick_note(registry, "research", "v1")
    assert _quick_note(registry, "research", "v2") == "" and _quick_note(registry, "research", None) == ""


@pytest.mark.issue(19)
def test_the_drift_demo_alerts_once_per_episode_and_only_after_the_drift_starts(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``demo --drift`` on the lexical monitor (no tone head built): a tone alert, then an over-attachment one, each
    after ``DRIFT_ONSET``, each with quoted examples and a recommendation naming what moved."""
    import re

    from penny_slm.cli import main
    from penny_slm.demo import DRIFT_ONSET

    monkeypatch.delenv("PENNY_SLM_MODELS", raising=False)  # main() sets it from --models-dir; undone after the test
    assert main(["--models-dir", str(tmp_path), "demo", "--drift"]) == 0
    out = capsys.readouterr().out
    alerts = re.findall(r"ALERT (\w+) \((\w+)\), severity ([\d.]+), since turn (\d+)", out)
    assert [(kind, channel) for kind, channel, _, _ in alerts] == [("tone", "tone_up"), ("over_attachment", "attachment")]
    assert all(int(since) >= DRIFT_ONSET and float(severity) > 0 for _, _, severity, since in alerts)
    before_onset = out.split(f"── turn {DRIFT_ONSET}")[0]
    assert "ALERT" not in before_onset and "lexical cheer proxy" in out
    assert "recommendation: Tone drifting toward cheerleading since turn" in out and "guilt about leaving" in out
    assert "2 alert(s) in 11 turns" in out
