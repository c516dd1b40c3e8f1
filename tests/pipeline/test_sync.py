"""Context sync manager on real databases (a SQLite file and a real PostgreSQL server): exactly-once,
per-producer order, crash safety, malformed updates, isolation between databases, several writers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from penny_slm.errors import ConfigError, InputError
from penny_slm.pipeline import db
from penny_slm.pipeline.sync import Ack, ContextSyncManager

Opener = Callable[[], db.PersonalityDB]
ROOT = Path(__file__).resolve().parents[2]
CONNECT = """
import sys
from pathlib import Path
from penny_slm.pipeline import db
from penny_slm.pipeline.sync import Ack, ContextSyncManager
url = sys.argv[1]
store = db.connect(sqlite_path=Path(url[len("sqlite:///"):])) if url.startswith("sqlite:///") else db.connect(url)
sync = ContextSyncManager(store, learning=None)  # the queue's mechanics: values jump by 1, no learning controls
"""
PRODUCER = CONNECT + """
sync.start()
for i in range(100000):
    ack = sync.queue_update("context", {"kind": "dimension", "user_id": "u", "key": "k", "value": i}, idempotency_key=f"crash-{i}")
    print(ack.idempotency_key, flush=True)
"""
SECOND_WRITER = CONNECT + """
sync.start()
for i in range(300):
    sync.queue_update("context", {"kind": "dimension", "user_id": "u", "key": "other", "value": i}, idempotency_key=f"other-{i}")
sync.stop()
print("done", flush=True)
"""


def _subprocess(code: str, url: str) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True, env=env)


def _values(store: db.PersonalityDB, key: str) -> list[object]:
    log = store.UpdateLog
    return [json.loads(r.new) for r in log.select().where(log.key == key).order_by(log.id)]


def test_fifty_concurrent_producers_apply_exactly_once_in_order(open_store: Opener) -> None:
    store = open_store()
    sync = ContextSyncManager(store, learning=None)  # values jump by 1: no approval routing here (test_controls has it)
    sync.start()
    errors: list[BaseException] = []

    def produce(p: int) -> None:
        try:
            for i in range(200):
                sync.queue_update("context", {"kind": "dimension", "user_id": f"user{p % 5}", "key": f"p{p}", "value": i},
                                  idempotency_key=f"{p}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sync.stop()
    assert not errors
    assert store.Outbox.select().count() == 10_000 and not store.Outbox.select().where(~store.Outbox.applied).exists()
    assert store.UpdateLog.select().count() == 10_000
    for p in range(50):
        assert _values(store, f"p{p}") == list(range(200))
    assert sync.get_latest_context("user0").dimensions["p0"] == 199


def test_a_retried_update_applies_once(open_store: Opener) -> None:
    sync = ContextSyncManager(open_store())
    update = {"kind": "slang", "user_id": "cj", "term": "Bussin", "gloss": "very good", "example": "this is bussin"}
    first = sync.queue_update("context", update, idempotency_key="m1-slang")
    again = sync.queue_update("context", update, idempotency_key="m1-slang")
    assert not first.duplicate and again.duplicate and again.outbox_id == first.outbox_id
    assert sync.process_queue() == 1 and sync.process_queue() == 0
    context = sync.get_latest_context("cj")
    assert context.slang == {"bussin": "very good"} and context.pending_updates == 0


def test_two_producers_racing_on_one_key_get_one_row(open_store: Opener) -> None:
    store = open_store()
    sync = ContextSyncManager(store, learning=None)
    acks: list[list[Ack]] = [[] for _ in range(20)]

    def produce(round_: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        acks[round_].append(sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "k", "value": round_},
                                              idempotency_key=f"race-{round_}"))

    for round_ in range(20):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=produce, args=(round_, barrier)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pair = acks[round_]
        assert len(pair) == 2 and pair[0].outbox_id == pair[1].outbox_id
        assert sorted(a.duplicate for a in pair) == [False, True]
    assert store.Outbox.select().count() == 20
    assert sync.process_queue() == 20 and _values(store, "k") == list(range(20))


def test_provenance_snapshots_and_module_runs(open_store: Opener) -> None:
    store = open_store()
    sync = ContextSyncManager(store)
    sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "formality", "value": 0.2,
                                  "confidence": 0.7, "message_id": "m1", "model_version": "v3"})
    sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "formality", "value": 0.3, "message_id": "m2"})
    sync.queue_update("context", {"kind": "snapshot", "user_id": "cj"})
    sync.queue_update("orchestrator", {"kind": "module_run", "module": "research", "status": "ok", "latency_ms": 3.1})
    assert sync.get_latest_context("cj").pending_updates == 3  # queued, not yet visible
    sync.process_queue()
    log = list(store.UpdateLog.select().order_by(store.UpdateLog.id))
    assert [(r.key, r.old, r.new, r.message_id) for r in log[:2]] == [("formality", None, "0.2", "m1"), ("formality", "0.2", "0.3", "m2")]
    assert log[0].model_version == "v3" and log[0].source_module == "context"
    assert json.loads(store.ProfileVersion.get().snapshot) == {"dimensions": {"formality": 0.3}, "confidence": {"formality": 0.5},
                                                               "slang": {}}
    assert store.ModuleRun.get().module == "research"
    ctx = sync.get_latest_context("cj")
    assert ctx.dimensions == {"formality": 0.3} and ctx.version == 1


MALFORMED = [
    ({"kind": "delete_everything", "user_id": "cj"}, "kind must be one of"),
    ("not a dict", "must be a dict"),
    ({"kind": "dimension", "key": "x", "value": 1}, "needs user_id"),
    ({"kind": "dimension", "user_id": "cj", "key": "x"}, "needs value"),
    ({"kind": "dimension", "user_id": 7, "key": "x", "value": 1}, "user_id must be a non-empty string"),
    ({"kind": "dimension", "user_id": "cj", "key": ["x"], "value": 1}, "key must be a non-empty string"),
    ({"kind": "dimension", "user_id": "cj", "key": "x", "value": object()}, "JSON-serialisable"),
    ({"kind": "dimension", "user_id": "cj", "key": "x", "value": float("nan")}, "JSON-serialisable"),
    ({"kind": "dimension", "user_id": "cj", "key": "x", "value": 1, "confidence": "high"}, "confidence must be a number"),
    ({"kind": "dimension", "user_id": "cj", "key": "x", "value": 1, "confidence": 1.5}, "between 0 and 1"),
    ({"kind": "dimension", "user_id": "cj", "key": "x", "value": 1, "surprise": 1}, "unknown fields"),
    ({"kind": "slang", "user_id": "cj", "term": 42}, "term must be a non-empty string"),
    ({"kind": "slang", "user_id": "cj", "term": "  "}, "term must be a non-empty string"),
    ({"kind": "slang", "user_id": "cj", "term": "rizz", "gloss": 3}, "gloss must be a string"),
    ({"kind": "module_run", "module": "research", "status": "ok", "latency_ms": "3 ms"}, "latency_ms must be a number"),
    ({"kind": "module_run", "module": "research", "status": "ok", "latency_ms": True}, "latency_ms must be a number"),
    ({"kind": "alert", "user_id": "cj", "alert_kind": "drift", "severity": "high"}, "needs detail"),
    ({"kind": "snapshot", "user_id": "cj", "message_id": 5}, "message_id must be a string"),
    ({"kind": "slang", "user_id": "cj", "term": "x" * 20_000}, "at most"),
]


@pytest.mark.issue(24)
@pytest.mark.parametrize(("update", "fragment"), MALFORMED)
def test_every_kind_of_malformed_update_is_refused_before_it_is_acknowledged(open_store: Opener, update: object, fragment: str) -> None:
    store = open_store()
    sync = ContextSyncManager(store)
    with pytest.raises(InputError, match=fragment):
        sync.queue_update("context", update)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=fragment):  # one bad item refuses the whole batch
        sync.queue_updates([("context", {"kind": "snapshot", "user_id": "cj"}, "ok-1"), ("context", update, None)])  # type: ignore[list-item]
    assert store.Outbox.select().count() == 0


@pytest.mark.issue(24)
def test_an_update_that_fails_to_apply_is_dead_lettered_and_the_writer_goes_on(open_store: Opener,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Rows that reach the writer but cannot be applied (written by an older version, edited by hand, a
    term longer than the column on PostgreSQL): each is moved aside with its reason and an alert, and
    every update queued after it still applies, with the writer thread alive."""
    store = open_store()
    sync = ContextSyncManager(store)
    sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "before", "value": 1})
    outbox = store.Outbox
    outbox.create(idempotency_key="bad-json", source="context", user_id="cj", payload="{not json")
    outbox.create(idempotency_key="bad-type", source="context", user_id="cj", payload=json.dumps({"kind": "slang", "user_id": "cj", "term": 42}))
    outbox.create(idempotency_key="bad-kind", source="context", user_id="cj", payload=json.dumps({"kind": "dimension", "user_id": "cj"}))
    sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "after", "value": 2})
    with caplog.at_level(logging.ERROR, logger="penny_slm"):
        sync.start()
        deadline = time.monotonic() + 20
        while outbox.select().where(~outbox.applied).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sync._thread is not None and sync._thread.is_alive()
        sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "later", "value": 3})
        sync.stop()
    assert sync.get_latest_context("cj").dimensions == {"before": 1, "after": 2, "later": 3}
    dead = {r.outbox_id: r.reason for r in store.DeadLetter.select()}
    assert len(dead) == 3
    reasons = " | ".join(dead.values())
    assert "JSONDecodeError" in reasons and "AttributeError" in reasons and "KeyError" in reasons
    alerts = list(store.Alert.select().where(store.Alert.kind == "dead_letter"))
    assert len(alerts) == 3 and all(a.severity == "high" for a in alerts)
    assert sum("dead-lettered" in r.message for r in caplog.records) == 3


@pytest.mark.issue(24)
def test_two_managers_on_two_databases_in_one_process_stay_apart(tmp_path: Path) -> None:
    a_store, b_store = db.connect(sqlite_path=tmp_path / "a.db"), db.connect(sqlite_path=tmp_path / "b.db")
    a, b = ContextSyncManager(a_store), ContextSyncManager(b_store)
    a.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "only_in_a", "value": 1})
    b.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "only_in_b", "value": 2})
    a.process_queue()
    b.process_queue()
    assert a.get_latest_context("cj").dimensions == {"only_in_a": 1}
    assert b.get_latest_context("cj").dimensions == {"only_in_b": 2}
    assert a_store.Outbox.select().count() == b_store.Outbox.select().count() == 1
    a_store.close()
    b_store.close()


@pytest.mark.issue(24)
def test_a_second_writer_process_on_the_same_database(open_store: Opener, database_url: str) -> None:
    """Two processes, each with producers and a writer: every update applies once, each producer's in order."""
    store = open_store()
    sync = ContextSyncManager(store, learning=None)
    sync.start()
    other = _subprocess(SECOND_WRITER, database_url)
    for i in range(300):
        sync.queue_update("context", {"kind": "dimension", "user_id": "u", "key": "mine", "value": i}, idempotency_key=f"mine-{i}")
    assert other.stdout is not None
    assert other.stdout.read().strip() == "done" and other.wait(timeout=120) == 0
    other.stdout.close()
    sync.stop()
    assert _values(store, "mine") == list(range(300)) and _values(store, "other") == list(range(300))
    assert store.UpdateLog.select().count() == 600 and not store.DeadLetter.select().exists()


def test_sigkill_mid_stream_loses_no_acknowledged_update(open_store: Opener, database_url: str) -> None:
    proc = _subprocess(PRODUCER, database_url)
    assert proc.stdout is not None
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:  # the producer died on its own: the assertions below say why
            break
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [line.strip() for line in proc.stdout if line.strip()]  # acks printed before the kill landed
    proc.stdout.close()
    assert len(acked) >= 300

    store = open_store()
    if store.is_sqlite:
        assert store.database.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r.idempotency_key for r in store.Outbox.select(store.Outbox.idempotency_key)}
    assert set(acked) <= stored
    ContextSyncManager(store, learning=None).process_queue()
    applied = [json.loads(r.new) for r in store.UpdateLog.select().order_by(store.UpdateLog.id)]
    assert applied == list(range(len(applied))) and len(applied) == len(stored)


def test_schema_migrations_bring_an_old_database_forward(open_store: Opener) -> None:
    old = open_store()
    old.database.drop_tables([old.DriftProfile, old.DriftTurn, old.PendingChange, old.ControlState, old.DeadLetter,
                              old.SchemaVersion, *old.first_schema])
    old.database.create_tables(old.first_schema)  # the first shipped schema: no user_id column, no versions
    store = open_store()
    columns = {c.name for c in store.database.get_columns("modulerun")}
    assert "user_id" in columns and [v.version for v in store.SchemaVersion.select()] == [1, 2, 3, 4, 5, 6, 7]
    assert store.database.table_exists("deadletter") and store.database.table_exists("pendingchange")
    assert "turn" in {c.name for c in store.database.get_columns("driftturn")} and store.database.table_exists("driftprofile")
    open_store()  # idempotent
    assert store.SchemaVersion.select().count() == 7


def test_sqlite_durability_follows_the_config(tmp_path: Path) -> None:
    """``synchronous=NORMAL`` (default: survives a killed process) or ``FULL`` (also a power cut), WAL either way."""
    normal = db.connect(sqlite_path=tmp_path / "n.db")
    full = db.connect(sqlite_path=tmp_path / "f.db", synchronous="full")
    assert normal.database.execute_sql("PRAGMA synchronous").fetchone()[0] == 1
    assert full.database.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    assert full.database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ConfigError, match="normal' or 'full"):
        db.connect(sqlite_path=tmp_path / "x.db", synchronous="sometimes")  # type: ignore[arg-type]
