"""Context sync manager on a real SQLite file: exactly-once, per-producer order, crash safety, migrations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import peewee as pw
import pytest

from penny_slm.errors import InputError
from penny_slm.pipeline import db
from penny_slm.pipeline.sync import ContextSyncManager

PRODUCER = """
import sys
from pathlib import Path
from penny_slm.pipeline import db
from penny_slm.pipeline.sync import ContextSyncManager
sync = ContextSyncManager(db.connect(sqlite_path=Path(sys.argv[1])))
sync.start()
for i in range(100000):
    ack = sync.queue_update("context", {"kind": "dimension", "user_id": "u", "key": "k", "value": i}, idempotency_key=f"crash-{i}")
    print(ack.idempotency_key, flush=True)
"""


@pytest.fixture()
def sync(tmp_path: Path) -> ContextSyncManager:
    return ContextSyncManager(db.connect(sqlite_path=tmp_path / "p.db"))


def test_fifty_concurrent_producers_apply_exactly_once_in_order(sync: ContextSyncManager) -> None:
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
    assert db.Outbox.select().count() == 10_000 and not db.Outbox.select().where(~db.Outbox.applied).exists()
    assert db.UpdateLog.select().count() == 10_000
    for p in range(50):
        values = [json.loads(r.new) for r in db.UpdateLog.select().where(db.UpdateLog.key == f"p{p}").order_by(db.UpdateLog.id)]
        assert values == list(range(200))
    assert sync.get_latest_context("user0").dimensions["p0"] == 199


def test_a_retried_update_applies_once(sync: ContextSyncManager) -> None:
    update = {"kind": "slang", "user_id": "cj", "term": "Bussin", "gloss": "very good", "example": "this is bussin"}
    first = sync.queue_update("context", update, idempotency_key="m1-slang")
    again = sync.queue_update("context", update, idempotency_key="m1-slang")
    assert not first.duplicate and again.duplicate and again.outbox_id == first.outbox_id
    assert sync.process_queue() == 1 and sync.process_queue() == 0
    context = sync.get_latest_context("cj")
    assert context.slang == {"bussin": "very good"} and context.pending_updates == 0


def test_provenance_snapshots_and_module_runs(sync: ContextSyncManager) -> None:
    sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "formality", "value": 0.2,
                                  "confidence": 0.7, "message_id": "m1", "model_version": "v3"})
    sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "formality", "value": 0.3, "message_id": "m2"})
    sync.queue_update("context", {"kind": "snapshot", "user_id": "cj"})
    sync.queue_update("orchestrator", {"kind": "module_run", "module": "research", "status": "ok", "latency_ms": 3.1})
    assert sync.get_latest_context("cj").pending_updates == 3  # queued, not yet visible
    sync.process_queue()
    log = list(db.UpdateLog.select().order_by(db.UpdateLog.id))
    assert [(r.key, r.old, r.new, r.message_id) for r in log[:2]] == [("formality", None, "0.2", "m1"), ("formality", "0.2", "0.3", "m2")]
    assert log[0].model_version == "v3" and log[0].source_module == "context"
    assert json.loads(db.ProfileVersion.get().snapshot) == {"formality": 0.3}
    assert db.ModuleRun.get().module == "research"
    ctx = sync.get_latest_context("cj")
    assert ctx.dimensions == {"formality": 0.3} and ctx.version == 1


def test_bad_updates_are_typed_errors(sync: ContextSyncManager) -> None:
    with pytest.raises(InputError, match="kind must be one of"):
        sync.queue_update("context", {"kind": "delete_everything", "user_id": "cj"})
    with pytest.raises(InputError, match="needs a user_id"):
        sync.queue_update("context", {"kind": "dimension", "key": "x", "value": 1})
    with pytest.raises(InputError, match="a dimension update needs value"):
        sync.queue_update("context", {"kind": "dimension", "user_id": "cj", "key": "x"})
    assert db.Outbox.select().count() == 0  # nothing half-valid was acknowledged


def test_sigkill_mid_stream_loses_no_acknowledged_update(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", PRODUCER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
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

    database = db.connect(sqlite_path=path)
    assert database.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r.idempotency_key for r in db.Outbox.select(db.Outbox.idempotency_key)}
    assert set(acked) <= stored
    ContextSyncManager(database).process_queue()
    applied = [json.loads(r.new) for r in db.UpdateLog.select().order_by(db.UpdateLog.id)]
    assert applied == list(range(len(applied))) and len(applied) == len(stored)


def test_schema_migrations_bring_an_old_database_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = pw.SqliteDatabase(str(path))
    db.database.initialize(old)
    old.create_tables([t if t is not db.ModuleRun else db._ModuleRunV0 for t in db.TABLES if t is not db.SchemaVersion])
    old.close()
    database = db.connect(sqlite_path=path)
    columns = {c.name for c in database.get_columns("modulerun")}
    assert "user_id" in columns and [v.version for v in db.SchemaVersion.select()] == [1]
    db.connect(sqlite_path=path)  # idempotent
    assert db.SchemaVersion.select().count() == 1
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
