"""ContextSyncManager: the only database writer. One durable, ordered queue for every module's updates.

- ``queue_update`` commits the update to the ``outbox`` table before it returns: an acknowledged update
  survives a crash (SQLite WAL; a killed process loses nothing committed).
- An idempotency key makes a retried update a no-op: the second call returns the first acknowledgement.
- ``process_queue`` applies pending updates in queue order, one transaction each, flipping ``applied``
  in the same transaction; ``UpdateLog.outbox_id`` is unique, so no update is ever applied twice.
  A lock keeps one writer per process; across processes the database's write lock does.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import peewee as pw

from penny_slm.errors import InputError
from penny_slm.pipeline import db

REQUIRED = {"dimension": ("key", "value"), "slang": ("term",), "module_run": ("module", "status", "latency_ms"),
            "alert": ("alert_kind", "severity", "detail"), "snapshot": ()}
"""Fields each update kind needs: checked before an update is acknowledged, so the writer never meets one it cannot apply."""
KINDS = tuple(REQUIRED)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ack:
    outbox_id: int
    idempotency_key: str
    duplicate: bool  # True: this key was queued before; nothing new was added


@dataclass(frozen=True, slots=True)
class ProfileContext:
    user_id: str
    dimensions: dict[str, Any]
    confidence: dict[str, float]
    slang: dict[str, str]
    version: int
    pending_updates: int


class ContextSyncManager:
    def __init__(self, database: pw.Database) -> None:
        self.db = database
        # SQLite: take the write lock when the transaction starts. A deferred transaction that reads and
        # then writes cannot upgrade its lock once another writer has committed ("database is locked").
        sqlite = isinstance(database, pw.SqliteDatabase)
        self._write_tx = (lambda: database.atomic(lock_type="IMMEDIATE")) if sqlite else database.atomic
        self._writer = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- producers ---------------------------------------------------------------------------
    def queue_update(self, source_slm: str, update: dict[str, Any], *, idempotency_key: str | None = None) -> Ack:
        """Persist ``update`` (``{"kind": ..., "user_id": ..., ...}``) to the outbox; returns once it is durable."""
        return self.queue_updates([(source_slm, update, idempotency_key)])[0]

    def queue_updates(self, items: list[tuple[str, dict[str, Any], str | None]]) -> list[Ack]:
        """Several ``(source, update, idempotency_key)`` in one transaction (one commit per turn, not per update)."""
        for _, update, _ in items:
            kind = update.get("kind")
            if kind not in KINDS:
                raise InputError(f"update kind must be one of {', '.join(KINDS)}, got {kind!r}")
            if kind != "module_run" and not isinstance(update.get("user_id"), str):
                raise InputError(f"a {kind} update needs a user_id string")
            missing = [f for f in REQUIRED[kind] if f not in update]
            if missing:
                raise InputError(f"a {kind} update needs {', '.join(missing)}")
        keyed = [(source, update, key or uuid.uuid4().hex) for source, update, key in items]
        try:
            with self._write_tx():
                existing = {r.idempotency_key: r.id for r in
                            db.Outbox.select(db.Outbox.id, db.Outbox.idempotency_key)
                            .where(db.Outbox.idempotency_key.in_([k for _, _, k in keyed]))}
                acks = []
                for source, update, key in keyed:
                    if key in existing:
                        acks.append(Ack(existing[key], key, duplicate=True))
                        continue
                    row = db.Outbox.create(idempotency_key=key, source=source, user_id=update.get("user_id", ""),
                                           payload=json.dumps(update, sort_keys=True))
                    existing[key] = row.id
                    acks.append(Ack(row.id, key, duplicate=False))
        except pw.IntegrityError:  # a key raced in from another thread or process: retry, now it is a duplicate
            return self.queue_updates(items)
        self._wake.set()
        return acks

    # -- the writer --------------------------------------------------------------------------
    def process_queue(self, limit: int = 0) -> int:
        """Apply pending updates in queue order; returns how many were applied."""
        applied = 0
        with self._writer:
            while not limit or applied < limit:
                row = db.Outbox.select().where(~db.Outbox.applied).order_by(db.Outbox.id).first()
                if row is None:
                    break
                with self._write_tx():
                    flipped = db.Outbox.update(applied=True).where((db.Outbox.id == row.id) & ~db.Outbox.applied).execute()
                    if flipped:  # another process may have applied it between select and update
                        self._apply(row.id, row.source, json.loads(row.payload))
                        applied += 1
        return applied

    def _apply(self, outbox_id: int, source: str, update: dict[str, Any]) -> None:
        kind = update["kind"]
        if kind == "module_run":
            db.ModuleRun.create(module=update["module"], status=update["status"], latency_ms=update["latency_ms"],
                                model_version=update.get("model_version") or "", user_id=update.get("user_id", ""))
            return
        user, _ = db.User.get_or_create(user_id=update["user_id"])
        if kind == "dimension":
            dim, created = db.ProfileDimension.get_or_create(user=user, key=update["key"], defaults={"value": "null"})
            old = None if created else dim.value
            dim.value = json.dumps(update["value"])
            dim.confidence = float(update.get("confidence", 0.5))
            dim.evidence_count += 1
            dim.updated = db._now()
            dim.save()
            self._log(outbox_id, source, user, update, update["key"], old, dim.value)
        elif kind == "slang":
            term, created = db.SlangTerm.get_or_create(user=user, term=update["term"].lower(), defaults={
                "gloss": update.get("gloss", ""), "example": update.get("example", "")})
            if not created:
                term.count += 1
                term.save()
            self._log(outbox_id, source, user, update, f"slang:{term.term}", None if created else str(term.count - 1), str(term.count))
        elif kind == "alert":
            db.Alert.create(user=user, kind=update["alert_kind"], severity=update["severity"], detail=update["detail"])
            self._log(outbox_id, source, user, update, f"alert:{update['alert_kind']}", None, update["severity"])
        elif kind == "snapshot":
            latest = db.ProfileVersion.select(pw.fn.MAX(db.ProfileVersion.version)).where(db.ProfileVersion.user == user).scalar() or 0
            snapshot = {d.key: json.loads(d.value) for d in user.dimensions}
            db.ProfileVersion.create(user=user, version=latest + 1, snapshot=json.dumps(snapshot, sort_keys=True))
            self._log(outbox_id, source, user, update, "profile_version", str(latest), str(latest + 1))

    @staticmethod
    def _log(outbox_id: int, source: str, user: db.User, update: dict[str, Any], key: str, old: str | None, new: str | None) -> None:
        db.UpdateLog.create(user=user, source_module=source, message_id=update.get("message_id", ""), key=key,
                            old=old, new=new, model_version=update.get("model_version") or "", outbox_id=outbox_id)

    def start(self, interval_s: float = 0.05) -> None:
        """Run the writer in a background thread (woken by each ``queue_update``)."""
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(interval_s)
                self._wake.clear()
                try:
                    self.process_queue()
                except pw.OperationalError as exc:  # e.g. the database briefly locked by another process: retry
                    log.warning("sync writer: %s; retrying", exc)

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="penny-sync-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer after draining what is queued."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        self.process_queue()

    # -- readers -----------------------------------------------------------------------------
    def get_latest_context(self, user_id: str) -> ProfileContext:
        """What the prompt builder reads: applied state only (pending updates are counted, not shown)."""
        dims = list(db.ProfileDimension.select().join(db.User).where(db.User.user_id == user_id))
        slang = {t.term: t.gloss for t in db.SlangTerm.select().join(db.User).where(db.User.user_id == user_id)}
        version = (db.ProfileVersion.select(pw.fn.MAX(db.ProfileVersion.version))
                   .join(db.User).where(db.User.user_id == user_id).scalar() or 0)
        pending = db.Outbox.select().where((db.Outbox.user_id == user_id) & ~db.Outbox.applied).count()
        return ProfileContext(user_id, {d.key: json.loads(d.value) for d in dims}, {d.key: d.confidence for d in dims},
                              slang, version, pending)
