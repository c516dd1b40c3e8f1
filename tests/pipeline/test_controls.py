"""Privacy and safety controls on real databases (a SQLite file and a real PostgreSQL server): versions and rollback,
rate limits, the approval queue, the kill switch, the transparency log, export and delete, retention, migrations."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from penny_slm.config import LearningConfig, RetentionConfig
from penny_slm.errors import InputError
from penny_slm.pipeline import db
from penny_slm.pipeline.controls import LearningControls, evidence_of, learning_items
from penny_slm.pipeline.sync import ContextSyncManager
from penny_slm.results import PreferenceUpdate

Opener = Callable[[], db.PersonalityDB]


class Clock:
    """The controls' clock: rate windows, expiries and retention are tested by moving it, not by sleeping."""

    def __init__(self) -> None:
        self.at = db.utcnow()

    def __call__(self) -> datetime:
        return self.at

    def advance(self, hours: float) -> None:
        self.at += timedelta(hours=hours)


@dataclasses.dataclass
class Rig:
    store: db.PersonalityDB
    sync: ContextSyncManager
    controls: LearningControls
    clock: Clock

    def learn(self, user: str, key: str, value: Any, **extra: Any) -> None:
        """One learned dimension update, applied now."""
        self.sync.queue_update("context", {"kind": "dimension", "user_id": user, "key": key, "value": value, **extra})
        self.sync.process_queue()

    def batch(self, user: str, values: dict[str, Any], message_id: str = "") -> None:
        """A turn's batch: the updates, then the snapshot that makes it a version."""
        items: list[tuple[str, dict[str, Any], str | None]] = [
            ("context", {"kind": "dimension", "user_id": user, "key": k, "value": v, "message_id": message_id}, None)
            for k, v in values.items()]
        self.sync.queue_updates([*items, ("context", {"kind": "snapshot", "user_id": user}, None)])
        self.sync.process_queue()

    def actions(self, user: str) -> list[tuple[str, str]]:
        return [(e.key, e.action) for e in self.controls.log(user)]


def rig(store: db.PersonalityDB, clock: Clock | None = None, **learning: Any) -> Rig:
    clock = clock or Clock()
    cfg = dataclasses.replace(LearningConfig(), **learning)
    sync = ContextSyncManager(store, learning=cfg, now=clock)
    return Rig(store, sync, LearningControls(store, sync, cfg), clock)


@pytest.fixture()
def r(open_store: Opener) -> Rig:
    return rig(open_store())


# -- versions and rollback -------------------------------------------------------------------------------------------

def test_every_batch_that_changes_the_profile_is_a_version_and_rollback_adds_one(r: Rig) -> None:
    r.batch("cj", {"formality_level": 0.5, "recent_topic": "coding"})
    r.batch("cj", {"formality_level": 0.55})
    r.batch("cj", {"recent_topic": "sports", "humour": "dry"})
    r.batch("cj", {"recent_topic": "sports"})  # changes nothing: no new version
    before = [(v.version, v.profile) for v in r.controls.versions("cj")]
    assert [v for v, _ in before] == [1, 2, 3]
    assert before[0][1]["dimensions"] == {"formality_level": 0.5, "recent_topic": "coding"}

    made = r.controls.rollback("cj", 1)
    assert made.version == 4 and made.note == "rollback to v1" and made.profile["dimensions"] == before[0][1]["dimensions"]
    assert r.sync.get_latest_context("cj").dimensions == {"formality_level": 0.5, "recent_topic": "coding"}  # humour gone
    assert [(v.version, v.profile) for v in r.controls.versions("cj")][:3] == before  # history is never rewritten
    entry = r.controls.log("cj")[-1]
    assert (entry.key, entry.action, entry.old, entry.new) == ("profile_version", "rollback", 3, 4)
    assert "restored v1 as v4" in entry.detail and "humour 'dry' -> None" in entry.detail
    with pytest.raises(InputError, match="no profile version 9; versions: 1, 2, 3, 4"):
        r.controls.rollback("cj", 9)
    with pytest.raises(InputError, match="no profile version 1; versions: none yet"):
        r.controls.rollback("nobody", 1)


def test_a_rollback_during_a_stream_of_updates_lands_between_them(open_store: Opener) -> None:
    """A producer streams batches while the background writer applies them; a rollback issued mid-stream is one
    queued update among them: versions stay contiguous, the ones before it are untouched, it restores the target
    exactly, every streamed update is applied once, and the stream goes on from the rolled-back profile."""
    r = rig(open_store())
    r.sync.start(interval_s=0.01)
    n = 120
    done = threading.Event()

    def stream() -> None:
        for i in range(n):
            r.sync.queue_updates([("context", {"kind": "dimension", "user_id": "cj", "key": "k", "value": i / 1000,
                                               "message_id": f"m{i}"}, f"m{i}-0"),
                                  ("context", {"kind": "dimension", "user_id": "cj", "key": f"seen_{i % 7}", "value": i},
                                   f"m{i}-1"),
                                  ("context", {"kind": "snapshot", "user_id": "cj"}, f"m{i}-v")])
            time.sleep(0.002)
        done.set()

    producer = threading.Thread(target=stream)
    producer.start()
    deadline = time.monotonic() + 60
    while len(r.controls.versions("cj")) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    target = r.controls.versions("cj")[4]
    earlier = {v.version: v.profile for v in r.controls.versions("cj")}
    made = r.controls.rollback("cj", target.version)
    producer.join()
    r.sync.stop()
    assert done.is_set()
    versions = r.controls.versions("cj")
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert all(v.profile == earlier[v.version] for v in versions if v.version in earlier)
    assert made.profile == target.profile and made.note == f"rollback to v{target.version}"
    rollbacks = [e for e in r.controls.log("cj") if e.action == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0].new == made.version
    learned = [e for e in r.controls.log("cj") if e.key == "k"]
    assert [e.message_id for e in learned] == [f"m{i}" for i in range(n)] and all(e.action == "applied" for e in learned)
    if made.version < versions[-1].version:  # the stream went on after the rollback
        assert versions[-1].profile["dimensions"]["k"] == (n - 1) / 1000
    assert r.sync.get_latest_context("cj").dimensions["k"] == (n - 1) / 1000


# -- rate limits -----------------------------------------------------------------------------------------------------

def test_rate_limits_clip_then_defer_and_a_deferred_change_applies_when_the_window_has_room(r: Rig) -> None:
    r.learn("cj", "formality_level", 0.5)  # a first value: nothing to bound
    r.learn("cj", "formality_level", 0.56)  # 0.06 of 0.1
    r.learn("cj", "formality_level", 0.76)  # asks 0.2: clipped to the 0.04 left
    assert r.sync.get_latest_context("cj").dimensions["formality_level"] == 0.6
    r.clock.advance(1)
    r.learn("cj", "formality_level", 0.7, message_id="m4")  # nothing left: deferred
    r.learn("cj", "formality_level", 0.65, message_id="m5")  # a newer estimate supersedes it
    r.learn("cj", "technical_depth", 0.3)
    r.learn("cj", "technical_depth", 0.5)  # 0.2 > 0.1 in one update: clipped (below the approval threshold)
    r.learn("cj", "mood_valence", 0.1)
    r.learn("cj", "mood_valence", 0.35)  # no rate limit configured for it
    assert r.actions("cj") == [("formality_level", "applied"), ("formality_level", "applied"), ("formality_level", "clipped"),
                               ("formality_level", "deferred"), ("formality_level", "deferred"),
                               ("technical_depth", "applied"), ("technical_depth", "clipped"),
                               ("mood_valence", "applied"), ("mood_valence", "applied")]
    log = r.controls.log("cj")
    assert log[2].old == 0.56 and log[2].new == 0.6 and "asked 0.76, applied 0.6" in log[2].detail
    assert "formality_level may move 0.1 per 24 h" in log[2].detail
    pending = r.controls.pending("cj", all_states=True)
    assert [(p.state, p.new) for p in pending] == [("superseded", 0.7), ("deferred", 0.65)]
    assert "supersedes deferred change" in log[4].detail and pending[1].not_before is not None
    assert r.sync.get_latest_context("cj").dimensions == {"formality_level": 0.6, "technical_depth": 0.4, "mood_valence": 0.35}

    assert r.sync.maintain() == 0  # not due yet
    r.clock.advance(23.5)  # the window now starts after the first moves
    assert r.sync.maintain() == 1
    r.sync.process_queue()
    entry = r.controls.log("cj")[-1]
    assert (entry.action, entry.old, entry.new, entry.message_id) == ("applied", 0.6, 0.65, "m5")
    assert "deferred change" in entry.detail and "released" in entry.detail
    assert r.controls.pending("cj") == [] and r.controls.pending("cj", all_states=True)[1].state == "released"
    # never silently dropped: every learning update queued has exactly one log row
    assert len([e for e in r.controls.log("cj") if e.key != "profile_version"]) == 10


def test_new_slang_terms_per_day_are_bounded_and_deferred_terms_follow(r: Rig) -> None:
    for term in ("bussin", "rizz", "mid", "delulu"):
        r.sync.queue_update("context", {"kind": "slang", "user_id": "cj", "term": term, "gloss": f"{term} gloss"})
    r.sync.queue_update("context", {"kind": "slang", "user_id": "cj", "term": "Bussin"})  # known: just counted
    r.sync.process_queue()
    assert r.actions("cj") == [("slang:bussin", "applied"), ("slang:rizz", "applied"), ("slang:mid", "applied"),
                               ("slang:delulu", "deferred"), ("slang:bussin", "applied")]
    assert "3 new slang terms in 24 h (learning.max_new_slang_per_day 3)" in r.controls.log("cj")[3].detail
    assert sorted(r.sync.get_latest_context("cj").slang) == ["bussin", "mid", "rizz"]
    r.clock.advance(24.1)
    r.sync.maintain()
    r.sync.process_queue()
    assert r.sync.get_latest_context("cj").slang["delulu"] == "delulu gloss"


# -- approval --------------------------------------------------------------------------------------------------------

def test_big_moves_persona_changes_and_adopting_slang_wait_for_approval(r: Rig) -> None:
    r.learn("cj", "formality_level", 0.2)
    r.learn("cj", "formality_level", 0.9)  # 0.7 > approval_threshold 0.3
    r.learn("cj", "persona.max_exclamations", 2)
    r.sync.queue_update("context", {"kind": "slang", "user_id": "cj", "term": "bussin", "gloss": "very good", "adopt": True})
    r.sync.process_queue()
    assert r.sync.get_latest_context("cj").dimensions == {"formality_level": 0.2}  # nothing waiting applied
    assert r.sync.get_latest_context("cj").slang == {}
    waiting = r.controls.pending("cj")
    assert [(p.key, p.state) for p in waiting] == [("formality_level", "awaiting_approval"),
                                                   ("persona.max_exclamations", "awaiting_approval"),
                                                   ("slang:bussin", "awaiting_approval")]
    assert "more than learning.approval_threshold 0.3" in waiting[0].reason and "persona" in waiting[1].reason
    assert "Penny's own voice" in waiting[2].reason and waiting[0].expires is not None

    first = r.controls.approve("cj", waiting[0].id)
    assert (first.state, first.changed) == ("approved", True)
    assert r.sync.get_latest_context("cj").dimensions["formality_level"] == 0.9
    assert r.controls.versions("cj")[-1].note == f"change #{waiting[0].id} approved"
    again = r.controls.approve("cj", waiting[0].id)
    assert (again.state, again.changed) == ("approved", False) and "already approved" in again.detail
    assert r.controls.reject("cj", waiting[0].id).changed is False
    rejected = r.controls.reject("cj", waiting[1].id)
    assert (rejected.state, rejected.changed) == ("rejected", True)
    assert "persona.max_exclamations" not in r.sync.get_latest_context("cj").dimensions
    adopted = r.controls.approve("cj", waiting[2].id)
    ctx = r.sync.get_latest_context("cj")
    assert adopted.changed and ctx.slang == {"bussin": "very good"} and ctx.adopted == ("bussin",)
    decided = [e.action for e in r.controls.log("cj") if e.action in ("approved", "rejected")]
    assert decided == ["approved", "rejected", "approved"]  # one row per decision; the repeats logged nothing

    with pytest.raises(InputError, match="has no change #999"):
        r.controls.approve("cj", 999)
    with pytest.raises(InputError, match="has no change"):
        r.controls.approve("someone-else", waiting[0].id)
    r.learn("cj", "technical_depth", 0.5)
    r.learn("cj", "technical_depth", 0.65)
    r.learn("cj", "technical_depth", 0.7)  # window used up: deferred
    deferred = r.controls.pending("cj")[0]
    with pytest.raises(InputError, match="deferred by a rate limit"):
        r.controls.approve("cj", deferred.id)


def test_approval_entries_expire(r: Rig) -> None:
    r.learn("cj", "formality_level", 0.1)
    r.learn("cj", "formality_level", 0.9)
    r.learn("cj", "technical_depth", 0.1)
    r.learn("cj", "technical_depth", 0.9)
    first, second = r.controls.pending("cj")
    r.clock.advance(72.5)
    assert [p.state for p in r.controls.pending("cj")] == ["expired", "expired"]  # shown as expired before the sweep
    late = r.controls.approve("cj", first.id)  # past its expiry: recorded as expired, not applied
    assert (late.state, late.changed) == ("expired", False)
    assert r.sync.maintain() == 1  # the writer's sweep records the other one
    r.sync.process_queue()
    assert [p.state for p in r.controls.pending("cj", all_states=True)] == ["expired", "expired"]
    assert [e.action for e in r.controls.log("cj")][-2:] == ["expired", "expired"]
    assert r.sync.get_latest_context("cj").dimensions == {"formality_level": 0.1, "technical_depth": 0.1}
    assert r.controls.reject("cj", second.id).changed is False


@pytest.mark.parametrize("pair", [("approve", "reject"), ("approve", "approve")])
def test_concurrent_decisions_on_one_entry_decide_it_once(open_store: Opener, pair: tuple[str, str]) -> None:
    """Two controls on two connections (as two processes would be) decide the same entry at the same moment,
    twenty times: exactly one call changes it, the other finds it decided, and one decision is logged."""
    clock = Clock()
    a, b = rig(open_store(), clock), rig(open_store(), clock)
    for i in range(20):
        a.learn("cj", f"d{i}", 0.0)
        a.learn("cj", f"d{i}", 1.0)
    entries = a.controls.pending("cj")
    assert len(entries) == 20
    for entry in entries:
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def decide(side: Rig, action: str, change_id: int = entry.id, barrier: threading.Barrier = barrier,
                   results: list[Any] = results) -> None:
            barrier.wait()
            results.append(getattr(side.controls, action)("cj", change_id))

        threads = [threading.Thread(target=decide, args=(a, pair[0])), threading.Thread(target=decide, args=(b, pair[1]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(d.changed for d in results) == [False, True], results
        winner = next(d for d in results if d.changed)
        assert {d.state for d in results} == {"approved" if winner.requested == "approve" else "rejected"}
    decisions = [e for e in a.controls.log("cj") if e.action in ("approved", "rejected")]
    assert len(decisions) == 20 and len({e.key for e in decisions}) == 20
    approved = {e.key for e in decisions if e.action == "approved"}
    assert {k for k, v in a.sync.get_latest_context("cj").dimensions.items() if v == 1.0} == approved


# -- kill switch -----------------------------------------------------------------------------------------------------

def test_the_kill_switch_stops_learning_and_persists_until_resumed(open_store: Opener) -> None:
    r = rig(open_store())
    r.learn("cj", "formality_level", 0.4)
    r.learn("cj", "formality_level", 0.9)
    waiting = r.controls.pending("cj")[0]
    status = r.controls.kill("user asked")
    assert status.safe_mode and status.kill_switch and not status.learning and status.reason == "user asked"
    r.learn("cj", "formality_level", 0.45)
    r.sync.queue_update("context", {"kind": "slang", "user_id": "cj", "term": "rizz"})
    r.sync.process_queue()
    assert r.actions("cj")[-2:] == [("formality_level", "blocked"), ("slang:rizz", "blocked")]
    assert "kill switch is on" in r.controls.log("cj")[-1].detail
    assert r.sync.get_latest_context("cj").dimensions == {"formality_level": 0.4} and r.sync.get_latest_context("cj").slang == {}
    with pytest.raises(InputError, match="resume it first"):
        r.controls.approve("cj", waiting.id)
    assert r.controls.reject("cj", waiting.id).changed  # rejecting stays possible

    restarted = rig(open_store())  # a new process: the switch is in the database
    assert restarted.controls.safe_mode() and restarted.controls.status().changed_at is not None
    assert not restarted.controls.resume().safe_mode
    restarted.learn("cj", "formality_level", 0.45)
    assert restarted.sync.get_latest_context("cj").dimensions == {"formality_level": 0.45}


def test_the_config_flags_stop_learning_too(open_store: Opener) -> None:
    killed = rig(open_store(), kill_switch=True)
    assert killed.controls.safe_mode() and killed.controls.resume().safe_mode  # resume cannot undo the config flag
    status = killed.controls.status()
    assert status.safe_mode and status.config_kill_switch and not status.kill_switch  # resume cannot undo the config
    killed.learn("cj", "formality_level", 0.5)
    assert killed.actions("cj") == [("formality_level", "blocked")]
    off = rig(open_store(), enabled=False)
    assert not off.controls.safe_mode() and not off.controls.status().learning
    off.learn("ann", "formality_level", 0.5)
    assert off.actions("ann") == [("formality_level", "blocked")]
    assert "learning.enabled: false" in off.controls.log("ann")[0].detail


# -- transparency log ------------------------------------------------------------------------------------------------

MESSAGE = "honestly that new compiler release is bussin, and I'd rather you skip the pleasantries and get to the point"


@pytest.mark.parametrize("setting", ["excerpt", "hash"])
def test_the_log_says_what_when_from_which_message_by_which_model_and_what_a_control_did(open_store: Opener, setting: str) -> None:
    r = rig(open_store(), log_message_text=setting)
    updates = (PreferenceUpdate("formality_level", None, 0.3, MESSAGE, "msg-1", 0.8, "context-v7"),
               PreferenceUpdate("slang:bussin", None, {"gloss": "very good", "adopt": False}, "is bussin", "msg-1", 0.9),
               {"key": "recent_topic", "value": "coding", "confidence": 0.3})
    items = learning_items("cj", "msg-1", updates, message=MESSAGE, model_version="context-v1", log_message_text=setting)
    assert [i[1]["kind"] for i in items] == ["dimension", "slang", "dimension", "snapshot"]
    r.sync.queue_updates(items)
    r.sync.process_queue()
    r.learn("cj", "formality_level", 0.95, message_id="msg-2", evidence=evidence_of("be very formal please", setting))
    entries = r.controls.log("cj")
    assert [(e.key, e.action) for e in entries] == [("formality_level", "applied"), ("slang:bussin", "applied"),
                                                    ("recent_topic", "applied"), ("profile_version", "version"),
                                                    ("formality_level", "awaiting_approval")]
    first = entries[0]
    assert first.message_id == "msg-1" and first.model_version == "context-v7" and entries[2].model_version == "context-v1"
    assert datetime.fromisoformat(first.at).tzinfo is not None and first.source == "context"
    if setting == "excerpt":
        assert first.evidence == MESSAGE[:79].rstrip() + "…" and len(first.evidence) <= 80
        assert entries[1].evidence == "is bussin"
    else:
        assert first.evidence.startswith("sha256:") and len(first.evidence) == 71
        dumped = json.dumps(r.controls.export("cj"))
        assert "skip the pleasantries" not in dumped and "is bussin" not in dumped and "be very formal" not in dumped
    line = entries[-1].line()
    assert "formality_level 0.3 -> 0.95  awaiting_approval: change #" in line and "message msg-2" in line
    assert json.loads(json.dumps([e.to_dict() for e in entries]))[0]["key"] == "formality_level"


def test_bad_preference_updates_are_left_out_and_the_rest_is_queued(caplog: pytest.LogCaptureFixture) -> None:
    items = learning_items("cj", "m", (PreferenceUpdate("", None, 1, "", "m"), {"value": 3},
                                       PreferenceUpdate("humour", None, "dry", "", ""),
                                       PreferenceUpdate("slang:", None, "x", "", ""),
                                       {"key": "k", "value": 1, "user_id": "someone-else", "kind": "slang"}),
                           message="hi", model_version=None, log_message_text="excerpt")
    assert [i[1].get("key") for i in items] == ["humour", "k", None] and items[0][1]["message_id"] == "m"
    assert items[1][1]["user_id"] == "cj" and items[1][1]["kind"] == "dimension"  # a module never picks the user
    assert items[0][1]["evidence"] == "hi"  # no evidence given: the message is the evidence
    assert sum("left out" in rec.getMessage() for rec in caplog.records) == 3
    assert learning_items("cj", "m", (), message="hi", model_version=None, log_message_text="hash") == []


# -- export and delete -----------------------------------------------------------------------------------------------

MARKER = "Zq7-marker-Xv"


def _fill(r: Rig, user: str, round_: int = 0) -> None:
    """A marker in every table that holds something about ``user``, written through the sync manager."""
    m = MARKER
    r.sync.queue_updates([
        ("context", {"kind": "dimension", "user_id": user, "key": f"topic_{m}", "value": f"value {m}", "evidence": f"said {m}",
                     "message_id": f"msg-{m}"}, None),
        ("context", {"kind": "dimension", "user_id": user, "key": "formality_level", "value": 0.1}, None),
        ("context", {"kind": "dimension", "user_id": user, "key": "formality_level", "value": 0.9, "evidence": f"ev {m}"}, None),
        ("context", {"kind": "slang", "user_id": user, "term": f"slang{m}", "gloss": f"gloss {m}", "example": f"ex {m}"}, None),
        ("context", {"kind": "slang", "user_id": user, "term": f"adopt{m}", "gloss": f"g {m}", "adopt": True}, None),
        ("context", {"kind": "snapshot", "user_id": user}, None),
        ("drift", {"kind": "alert", "user_id": user, "alert_kind": "drift", "severity": "low", "detail": f"alert {m}"}, None),
        ("orchestrator", {"kind": "module_run", "user_id": user, "module": f"mod{m}", "status": "ok", "latency_ms": 1.0}, None),
        ("drift", {"kind": "drift_turn", "user_id": user, "message": f"said {m}", "response": f"answered {m}", "keep": 5}, None),
        ("drift", {"kind": "drift_state", "user_id": user, "checked": 1, "scorer": f"scorer {m}", "baseline": {"cheer": 0.1}}, None),
    ])
    r.sync.process_queue()
    r.store.Outbox.create(idempotency_key=f"bad-{user}-{round_}", source="context", user_id=user, payload="{broken " + m)
    r.sync.process_queue()  # dead-lettered, with an alert
    for i in range(4):  # a deferral too
        r.sync.queue_update("context", {"kind": "slang", "user_id": user, "term": f"t{i}{m}"})
    r.sync.queue_update("context", {"kind": "dimension", "user_id": user, "key": "queued_only", "value": m})  # not applied yet


def test_export_then_delete_then_export_shows_nothing(open_store: Opener, database_url: str, request: pytest.FixtureRequest) -> None:
    store = open_store()
    r = rig(store)
    _fill(r, f"cj-{MARKER}")
    r.sync.queue_update("context", {"kind": "dimension", "user_id": "other", "key": "formality_level", "value": 0.5})
    r.sync.process_queue()
    _fill(r, f"cj-{MARKER}", 1)  # twice: a second batch leaves its queued update pending
    exported = r.controls.export(f"cj-{MARKER}")
    assert exported["format"] == "penny-slm-export/1"
    for section in ("profile", "slang", "versions", "log", "pending", "alerts", "module_runs", "queued_updates", "dead_letters",
                    "drift_turns", "drift_profile"):
        assert exported[section] and MARKER in json.dumps(exported[section]), section
    assert any(not q["applied"] for q in exported["queued_updates"])
    assert {p["state"] for p in exported["pending"]} >= {"awaiting_approval", "deferred"}

    assert _marked_files(store, database_url, request)  # the check below can see the marker where it is

    report = r.controls.delete(f"cj-{MARKER}")
    assert report.vacuumed and all(report.rows[t] for t in ("user", "profiledimension", "slangterm", "updatelog", "profileversion",
                                                             "pendingchange", "alert", "modulerun", "outbox", "deadletter",
                                                             "driftturn", "driftprofile"))
    after = r.controls.export(f"cj-{MARKER}")
    assert after["user"] is None and not any(after[s] for s in ("profile", "slang", "versions", "log", "pending", "alerts",
                                                                "module_runs", "queued_updates", "dead_letters",
                                                                "drift_turns", "drift_profile"))
    assert r.sync.process_queue() == 0  # nothing of theirs left to apply
    assert r.sync.get_latest_context("other").dimensions == {"formality_level": 0.5}  # other users are untouched
    assert r.controls.export("other")["log"]
    s = store
    for model in (s.ProfileDimension, s.SlangTerm, s.UpdateLog, s.ProfileVersion, s.PendingChange, s.Alert):
        assert not model.select().where(model.user == f"cj-{MARKER}").exists(), model
    for model in (s.User, s.Outbox, s.DeadLetter, s.ModuleRun):
        assert not model.select().where(model.user_id == f"cj-{MARKER}").exists(), model

    assert _marked_files(store, database_url, request) == []
    if store.is_sqlite:  # no recoverable text: not in the file, not in its write-ahead log
        assert report.wal_truncated is True and report.backend == "sqlite"
        assert b"formality_level" in Path(database_url.removeprefix("sqlite:///")).read_bytes()  # the other user's row
    else:
        # PostgreSQL: no row is left, and each table deleted from was rewritten by VACUUM FULL: its files (heap,
        # TOAST, indexes) hold no copy. What PostgreSQL does not promise (POSTGRES_NOTE): pg_wal keeps the old rows
        # until its segments are recycled, and archived WAL, replicas, backups and freed file-system blocks are not
        # scrubbed.
        assert report.backend == "postgresql" and report.wal_truncated is None and "pg_wal" in report.note


def _marked_files(store: db.PersonalityDB, database_url: str, request: pytest.FixtureRequest) -> list[Path]:
    """The database files whose bytes hold MARKER: SQLite's file and WAL; on PostgreSQL (after a checkpoint) every
    file of the personality tables, their TOAST tables and indexes."""
    if store.is_sqlite:
        path = Path(database_url.removeprefix("sqlite:///"))
        files = [path, Path(f"{path}-wal")]
    else:
        store.database.execute_sql("CHECKPOINT")
        data_dir = Path(request.getfixturevalue("postgres_server").root) / "data"
        files = []
        for model in store.database.get_tables():
            for (relation,) in store.database.execute_sql(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = %s::regclass "
                    "OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = %s::regclass) "
                    "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass)",
                    (f'"{model}"', f'"{model}"', f'"{model}"')).fetchall():
                if relation:
                    files += sorted(data_dir.glob(f"{relation}*"))
    return [f for f in files if f.exists() and MARKER.encode() in f.read_bytes()]


# -- retention -------------------------------------------------------------------------------------------------------

def test_retention_prunes_history_on_its_own(open_store: Opener) -> None:
    store = open_store()
    clock = Clock()
    r = rig(store, clock, retention_days=RetentionConfig(outbox=7, module_runs=30, update_log=365, alerts=90),
            approval_expiry_hours=24 * 1000.0)  # the waiting change outlives the test: this tests the prune
    r.learn("cj", "formality_level", 0.2)
    r.learn("cj", "formality_level", 0.9)  # waits for approval: never pruned while it waits
    r.batch("cj", {"humour": "dry"})
    r.sync.queue_update("orchestrator", {"kind": "module_run", "user_id": "cj", "module": "research", "status": "ok", "latency_ms": 2.0})
    r.sync.queue_update("drift", {"kind": "alert", "user_id": "cj", "alert_kind": "drift", "severity": "low", "detail": "x"})
    r.sync.process_queue()
    counts = {t: m.select().count() for t, m in (("outbox", store.Outbox), ("modulerun", store.ModuleRun),
                                                  ("updatelog", store.UpdateLog), ("alert", store.Alert))}
    clock.advance(24 * 8)  # past the outbox's 7 days only
    r.sync.start(interval_s=0.01)
    _wait(lambda: store.Outbox.select().count() == 0)
    assert store.ModuleRun.select().count() == counts["modulerun"] and store.UpdateLog.select().count() == counts["updatelog"]
    r.sync.stop()
    clock.advance(24 * 400)  # past every retention
    r.sync.prune_interval_s = 0.05
    r.sync.start(interval_s=0.01)
    _wait(lambda: store.UpdateLog.select().count() == 0 and store.Alert.select().count() == 0
          and store.ModuleRun.select().count() == 0)
    r.sync.stop()
    assert [p.state for p in r.controls.pending("cj", all_states=True)] == ["awaiting_approval"]
    assert len(r.controls.versions("cj")) == 1 and r.sync.get_latest_context("cj").dimensions["humour"] == "dry"
    assert r.controls.prune() == {"outbox": 0, "modulerun": 0, "updatelog": 0, "pendingchange": 0, "alert": 0, "deadletter": 0,
                                   "driftturn": 0, "driftprofile": 0}


def _wait(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- migrations ------------------------------------------------------------------------------------------------------

def test_a_database_of_the_previous_schema_is_brought_forward(open_store: Opener) -> None:
    """A database as the release before the controls left it (first schema + migrations 1-2, a flat version
    snapshot, log rows without actions) opens, migrates, and its history reads and rolls back."""
    old = open_store()
    old.database.drop_tables([old.DriftProfile, old.DriftTurn, old.PendingChange, old.ControlState, old.DeadLetter, old.SchemaVersion,
                              *old.first_schema])
    old.database.create_tables(old.first_schema)
    from playhouse.migrate import SchemaMigrator

    migrator = SchemaMigrator.from_database(old.database)
    old.database.create_tables([old.SchemaVersion])
    for number, step in enumerate(db.MIGRATIONS[:2], start=1):
        step(old, migrator)
        old.SchemaVersion.create(version=number)
    q = old.database.execute_sql
    p = "?" if old.is_sqlite else "%s"
    q(f'INSERT INTO "user" (user_id, created) VALUES ({p}, {p})', ("cj", db.utcnow()))
    q(f"INSERT INTO profiledimension (user_id, key, value, confidence, evidence_count, updated) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
      ("cj", "formality_level", "0.7", 0.6, 3, db.utcnow()))
    q(f"INSERT INTO slangterm (user_id, term, gloss, first_seen, count, example) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
      ("cj", "rizz", "charm", db.utcnow(), 1, ""))
    q(f"INSERT INTO outbox (idempotency_key, source, user_id, payload, queued, applied) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
      ("k1", "context", "cj", json.dumps({"kind": "dimension", "user_id": "cj", "key": "formality_level", "value": 0.5}),
       db.utcnow(), True))
    q(f"INSERT INTO updatelog (user_id, source_module, message_id, key, old, new, model_version, outbox_id, at) "
      f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})", ("cj", "context", "m1", "formality_level", None, "0.5", "", 1, db.utcnow()))
    q(f"INSERT INTO profileversion (user_id, version, snapshot, at) VALUES ({p}, {p}, {p}, {p})",
      ("cj", 1, json.dumps({"formality_level": 0.5}), db.utcnow()))

    r = rig(open_store())
    assert [v.version for v in r.store.SchemaVersion.select().order_by(r.store.SchemaVersion.version)] == [1, 2, 3, 4, 5, 6, 7]
    (entry,) = r.controls.log("cj")
    assert (entry.action, entry.detail, entry.evidence, entry.new) == ("applied", "", "", 0.5)
    (version,) = r.controls.versions("cj")
    assert version.profile == {"dimensions": {"formality_level": 0.5}, "confidence": {}, "slang": None} and version.note == ""
    assert r.sync.get_latest_context("cj").adopted == ()
    made = r.controls.rollback("cj", 1)  # an old flat snapshot restores the dimensions and leaves the slang alone
    assert made.profile["dimensions"] == {"formality_level": 0.5} and made.profile["slang"] == {"rizz": {"gloss": "charm", "adopted": False}}
    assert r.sync.get_latest_context("cj").confidence["formality_level"] == 0.6


def test_every_learning_setting_is_the_one_the_controls_use(open_store: Opener) -> None:
    """Non-default values of each setting change what happens (the defaults are exercised by the tests above)."""
    r = rig(open_store(), rate_limits={"formality_level": 0.05, "warmth": 0.2}, rate_window_hours=2.0, approval_threshold=0.5,
            max_new_slang_per_day=1, approval_expiry_hours=1.0)
    r.learn("cj", "formality_level", 0.5)
    r.learn("cj", "formality_level", 0.6)  # 0.1 > 0.05: clipped
    r.learn("cj", "warmth", 0.1)
    r.learn("cj", "warmth", 0.5)  # 0.4 < approval_threshold 0.5, over warmth's 0.2: clipped
    r.learn("cj", "technical_depth", 0.1)
    r.learn("cj", "technical_depth", 0.6)  # 0.5 is not more than 0.5 and no limit is configured for it: applied
    r.learn("cj", "technical_depth", 0.0)  # 0.6 > 0.5: waits
    for term in ("rizz", "mid"):
        r.sync.queue_update("context", {"kind": "slang", "user_id": "cj", "term": term})
    r.sync.process_queue()
    assert [a for _, a in r.actions("cj")] == ["applied", "clipped", "applied", "clipped", "applied", "applied",
                                               "awaiting_approval", "applied", "deferred"]
    assert r.sync.get_latest_context("cj").dimensions == {"formality_level": 0.55, "warmth": 0.3, "technical_depth": 0.6}
    r.clock.advance(1.5)
    assert r.controls.pending("cj")[0].state == "expired"  # approval_expiry_hours 1
    r.learn("cj", "formality_level", 0.6)  # still inside the 2 h window
    assert r.actions("cj")[-1] == ("formality_level", "deferred")
    r.clock.advance(0.6)  # past rate_window_hours 2
    r.learn("cj", "formality_level", 0.6)
    assert r.actions("cj")[-1] == ("formality_level", "applied")
