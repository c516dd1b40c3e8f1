"""Learning changes the prompt: two conversations, spread over three days, through the context step, the real sync
queue and learning controls (default settings), and the prompt builder."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from penny_slm.config import LearningConfig, load_persona
from penny_slm.pipeline import db
from penny_slm.pipeline.controls import learning_items
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import TRACKER_VERSION, ContextTracker
from penny_slm.pipeline.prompt import STYLE_LINES, build_system_prompt
from penny_slm.pipeline.sync import ContextSyncManager, ProfileContext

CASUAL = ["ngl that ramen was bussin lol", "omg u coming to the party tonight??", "yeah gonna crash early tbh",
          "lowkey tired rn, this week was mid", "bruh my phone died again lol", "haha ok see u later fam"]
EXPERT = ["Could you explain why my mutex deadlocks when two threads acquire the locks in opposite order?",
          "Does PostgreSQL use the index when the query filters on a function of the column?",
          "I would appreciate a precise account of how the scheduler handles priority inversion.",
          "Is the posterior variance of a Bayesian linear regression affected by the prior covariance?",
          "Please compare the latency and throughput of asynchronous and synchronous socket servers.",
          "What determines the time complexity of the recursion in a binary heap insertion?"]


HOURS_APART = 12
"""A message every 12 hours: the default rate limit (0.1 per dimension per 24 h) then lets a pattern show within days."""


def converse(tmp_path: Path, user: str, messages: list[str]) -> tuple[list[ProfileContext], ContextSyncManager]:
    store = db.connect(None, tmp_path / f"{user}.db")
    clock = [db.utcnow()]
    sync = ContextSyncManager(store, learning=LearningConfig(), now=lambda: clock[0])
    tracker = ContextTracker()
    tracker.clock = lambda: datetime(2026, 1, 1, 15, 0)  # type: ignore[method-assign]
    seen = []
    for i, text in enumerate(messages):
        profile = sync.get_latest_context(user)
        base = TurnContext.of(text, user_id=user)
        update = tracker.run(TurnContext(user, base.message, f"{user}-{i}", profile))
        sync.queue_updates(learning_items(user, f"{user}-{i}", update.updates, message=text,
                                          model_version=TRACKER_VERSION, log_message_text="excerpt"))
        sync.process_queue()
        seen.append(sync.get_latest_context(user))
        clock[0] += timedelta(hours=HOURS_APART)
    return seen, sync


def test_casual_and_expert_conversations_learn_opposite_profiles_and_prompts(tmp_path: Path) -> None:
    casual, casual_sync = converse(tmp_path, "casual", CASUAL)
    expert, _ = converse(tmp_path, "expert", EXPERT)
    c, e = casual[-1], expert[-1]
    # the learned values moved the right way from the neutral 0.5, step by step, never backwards
    assert c.dimensions["formality_level"] < 0.5 < e.dimensions["formality_level"]
    assert c.dimensions["technical_depth"] < 0.5 < e.dimensions["technical_depth"]
    casual_path = [p.dimensions["formality_level"] for p in casual]
    assert casual_path == sorted(casual_path, reverse=True) and casual_path[0] > casual_path[-1]
    # one message moved little; the pattern moved more (the controls' 0.1-per-day rate limit bounds both)
    assert 0.5 - casual_path[0] <= 0.1 and 0.5 - casual_path[-1] > 0.5 - casual_path[0]
    assert c.confidence["formality_level"] >= 0.5 and casual[0].confidence["formality_level"] < 0.5
    # slang: every term, none of the convention's exclusions (lol, omg, u, yeah, gonna, haha, ok)
    assert set(c.slang) == {"ngl", "bussin", "tbh", "lowkey", "mid", "bruh", "fam"} and not e.slang
    # the prompts differ exactly by the documented style lines
    persona = load_persona()
    p_casual, p_expert = build_system_prompt(persona, c), build_system_prompt(persona, e)
    low_f, high_f = STYLE_LINES["formality_level"]
    low_d, high_d = STYLE_LINES["technical_depth"]
    assert low_f in p_casual and low_d in p_casual and high_f not in p_casual and high_d not in p_casual
    assert high_f in p_expert and high_d in p_expert and low_f not in p_expert and low_d not in p_expert
    assert "bussin (very good (food))" in p_casual and "Slang" not in p_expert
    assert "formality_level" not in p_casual and "0." not in p_casual.split("Slang")[0]  # no raw numbers
    # before the evidence passes the confidence bar the prompt carries no style line
    assert not any(line in build_system_prompt(persona, casual[0]) for pair in STYLE_LINES.values() for line in pair)
    # every change has its provenance in the transparency log
    log = casual_sync.store.UpdateLog
    rows = list(log.select().where(log.key == "formality_level"))
    assert len(rows) == len(CASUAL) and {r.model_version for r in rows} == {TRACKER_VERSION}
    assert [r.message_id for r in rows] == [f"casual-{i}" for i in range(len(CASUAL))]


def test_through_the_layer_the_learned_profile_reaches_the_next_prompt(tmp_path: Path) -> None:
    """The whole path in SLMLayer (research and guard off, so no model is needed): the context step's updates are
    queued with their provenance, applied by the writer, and the next turn's prompt carries the slang it learned."""
    import asyncio
    import json

    from penny_slm.config import load_config
    from penny_slm.pipeline.layer import SLMLayer

    path = tmp_path / "slm_config.json"
    path.write_text(json.dumps({"models": {"research_classifier": {"enabled": False},
                                           "personality_guard": {"enabled": False}}}))
    layer = SLMLayer(load_config(path), sqlite_path=tmp_path / "p.db").load()
    prompts: list[str] = []

    def llm(system_prompt: str, message: str) -> str:
        prompts.append(system_prompt)
        return "Noted."

    first = asyncio.run(layer.process("cj", "ngl that ramen was bussin lol", llm=llm))
    layer.sync.process_queue()  # type: ignore[union-attr]
    asyncio.run(layer.process("cj", "ok cool", llm=llm))
    layer.close()
    assert first.context.status == "ok" and [s.term for s in first.context.result.slang_detected] == ["ngl", "bussin"]
    assert "bussin" not in prompts[0] and "bussin (very good (food))" in prompts[1]
    log = layer.store.UpdateLog
    row = log.get((log.key == "formality_level") & (log.message_id == first.context.result.updates[1].source_turn))
    assert row.model_version == TRACKER_VERSION and row.action == "applied"


def test_a_stated_preference_reaches_the_next_prompt_through_the_queue_and_controls(tmp_path: Path) -> None:
    """Issue 18: "keep your answers short" is in the very next system prompt (a stated preference is not rate-limited
    like an estimate), and a later statement replaces it."""
    seen, _sync = converse(tmp_path, "brief", ["hey, from now on keep your answers short please",
                                               "what's a monad", "actually I'd like more detailed answers"])
    persona = load_persona()
    assert seen[0].dimensions["reply_length"] == "short" and seen[0].confidence["reply_length"] >= 0.5
    assert "They asked for short replies" in build_system_prompt(persona, seen[1])
    assert seen[2].dimensions["reply_length"] == "detailed"
    last = build_system_prompt(persona, seen[2])
    assert "They asked for detailed replies" in last and "short replies" not in last
