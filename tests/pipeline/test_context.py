"""The context step: time-of-day buckets at every boundary, the profile update rule, and what one turn learns."""

from __future__ import annotations

from datetime import datetime

import pytest

from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import (
    CONFIDENCE_HALF,
    ContextTracker,
    evidence_of_confidence,
    learn,
    time_of_day,
)
from penny_slm.pipeline.sync import ProfileContext
from penny_slm.results import PreferenceUpdate


@pytest.mark.parametrize(("hour", "bucket"), [
    (0, "night"), (4, "night"), (5, "morning"), (11, "morning"), (12, "afternoon"), (17, "afternoon"),
    (18, "evening"), (22, "evening"), (23, "night"),
])
def test_time_of_day_at_every_boundary(hour: int, bucket: str) -> None:
    assert time_of_day(hour) == bucket


def test_every_hour_has_one_bucket_and_bad_hours_are_refused() -> None:
    assert [time_of_day(h) for h in range(24)].count("night") == 6
    for bad in (-1, 24, 3.5, True):
        with pytest.raises(ValueError):
            time_of_day(bad)  # type: ignore[arg-type]


def test_one_message_moves_little_a_pattern_moves_more() -> None:
    first = learn(None, None, 0.0)
    assert first.value == pytest.approx(0.4) and first.evidence == 1  # a fifth of the way from the 0.5 prior
    assert first.confidence < 0.5
    est = first
    for _ in range(9):
        est = learn(est.value, est.confidence, 0.0)
    assert est.value < 0.2 and est.confidence > 0.7 and est.evidence == pytest.approx(10, abs=0.01)
    # a settled estimate: one contrary message moves it at most 1/(4+cap+1)
    settled = est
    for _ in range(30):
        settled = learn(settled.value, settled.confidence, 0.0)
    assert learn(settled.value, settled.confidence, 1.0).value - settled.value <= 1 / 21 + 1e-6


def test_evidence_round_trips_through_confidence() -> None:
    for n in (1.0, 4.0, 10.0):
        assert evidence_of_confidence(n / (n + CONFIDENCE_HALF)) == pytest.approx(n)
    assert evidence_of_confidence(None) == 0.0


def tracker_at(hour: int) -> ContextTracker:
    tracker = ContextTracker()
    tracker.clock = lambda: datetime(2026, 1, 1, hour, 30)  # type: ignore[method-assign]
    return tracker


def test_a_turn_gives_markers_estimates_slang_and_preference_updates() -> None:
    turn = TurnContext.of("ngl that ramen was bussin, no cap")
    turn = TurnContext(turn.user_id, turn.message, "m1")
    update = tracker_at(2).run(turn)
    assert update.context_markers["time_of_day"] == "night" and update.context_markers["local_hour"] == 2
    assert [s.term for s in update.slang_detected] == ["ngl", "bussin", "no cap"]
    assert update.formality_level is not None and update.formality_level < 0.45
    assert update.technical_depth is not None and update.technical_depth < 0.2
    prefs = {u.key: u for u in update.updates if isinstance(u, PreferenceUpdate)}
    assert set(prefs) == {"formality_level", "technical_depth", "slang:ngl", "slang:bussin", "slang:no cap"}
    f = prefs["formality_level"]
    assert f.old is None and 0.4 <= f.new < 0.5 and f.source_turn == "m1" and f.model_version
    assert prefs["slang:bussin"].new == "very good (food)" and "bussin" in prefs["slang:bussin"].evidence
    assert update.to_dict()["slang_detected"][0] == {"term": "ngl", "start": 0, "end": 3,
                                                     "confidence": 0.9, "gloss": "not gonna lie"}


def test_the_profile_read_at_turn_start_is_the_prior() -> None:
    profile = ProfileContext("u", {"formality_level": 0.9}, {"formality_level": 0.8}, {}, 3, 0)
    base = TurnContext.of("lol ok")
    update = tracker_at(9).run(TurnContext("u", base.message, "m2", profile))
    f = next(u for u in update.updates if isinstance(u, PreferenceUpdate) and u.key == "formality_level")
    assert f.old == 0.9 and 0.8 < f.new < 0.9 and f.confidence > 0.8  # 16 messages' evidence: a small step


@pytest.mark.issue(18)
def test_a_stated_preference_is_learned_at_once_and_a_later_one_replaces_it() -> None:
    base = TurnContext.of("From now on keep your answers short, and no jargon please.")
    update = tracker_at(10).run(TurnContext("u", base.message, "m7"))
    prefs = {u.key: u for u in update.updates if isinstance(u, PreferenceUpdate)}
    assert prefs["reply_length"].new == "short" and prefs["reply_length"].old is None
    assert prefs["reply_length"].confidence == 0.9 and prefs["reply_length"].source_turn == "m7"
    assert prefs["reply_length"].evidence == "keep your answers short" and prefs["jargon"].new == "avoid"
    profile = ProfileContext("u", {"reply_length": "short"}, {"reply_length": 0.9}, {}, 1, 0)
    later = tracker_at(11).run(TurnContext("u", TurnContext.of("I'd like more detailed answers").message, "m8", profile))
    length = next(u for u in later.updates if isinstance(u, PreferenceUpdate) and u.key == "reply_length")
    assert (length.old, length.new) == ("short", "detailed")
    plain = tracker_at(11).run(TurnContext("u", TurnContext.of("how do I keep my speech short?").message, "m9", profile))
    assert not any(isinstance(u, PreferenceUpdate) and u.key in ("reply_length", "jargon") for u in plain.updates)
