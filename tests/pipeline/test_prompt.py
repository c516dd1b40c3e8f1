"""The dynamic system prompt: persona, confident learned preferences, slang, research notes; nothing invented."""

from __future__ import annotations

from penny_slm.config import load_persona
from penny_slm.pipeline.prompt import BASE, build_system_prompt
from penny_slm.pipeline.sync import ProfileContext


def test_only_confident_learned_values_reach_the_prompt() -> None:
    profile = ProfileContext("cj", {"formality": "casual", "recent_topic": "sports"}, {"formality": 0.8, "recent_topic": 0.3},
                             {"bussin": "very good"}, 2, 0)
    prompt = build_system_prompt(load_persona(), profile, "Live search results: ...")
    assert prompt.startswith(BASE) and "The user's name is CJ" in prompt
    assert "formality = casual" in prompt and "recent_topic" not in prompt
    assert "bussin (very good)" in prompt and prompt.endswith("Live search results: ...")


def test_a_new_user_gets_no_invented_profile() -> None:
    prompt = build_system_prompt(load_persona(), ProfileContext("new", {}, {}, {}, 0, 0))
    assert "learned" not in prompt and "Slang" not in prompt
