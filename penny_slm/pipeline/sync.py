"""ContextSyncManager: the only database writer. One durable, ordered queue for every module's updates.

- ``queue_update`` validates the update's fields *and their types*, then commits it to the ``outbox``
  table before it returns: an acknowledged update survives a killed process (see ``db`` for what each
  ``synchronous`` setting promises), and the writer never meets an update it could have refused.
- An idempotency key makes a retried update a no-op: the second call returns the first acknowledgement,
  also when two producers (threads or processes) race on the same key.
- ``process_queue`` applies pending updates in queue order, one transaction each, flipping ``applied``
  in the same transaction; ``UpdateLog.outbox_id`` is unique, so no update is ever applied twice. The
  transaction takes the database's write lock first, so several writer processes still apply in order.
- Nothing stops the writer: an update that fails to apply for any reason but a transient database
  error is moved to ``deadletter`` with the reason, an ``alert`` row is raised and logged, and the
  writer goes on with the next. Transient errors (database locked, connection lost) are retried.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee as pw

from penny_slm.errors import InputError
from penny_slm.pipeline.db import PersonalityDB, utcnow

log = logging.getLogger(__name__)

_STR, _NUM, _JSON = "a string", "a number", "any JSON value"
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    # kind -> field -> (type, required). Every kind may also carry message_id and model_version (strings).
    "dimension": {"user_id": (_STR, True), "key": (_STR, True), "value": (_JSON, True), "confidence": (_NUM, False)},
    "slang": {"user_id": (_STR, True), "term": (_STR, True), "gloss": (_STR, False), "example": (_STR, False)},
    "module_run": {"module": (_STR, True), "status": (_STR, True), "latency_ms": (_NUM, True), "user_id": (_STR, False)},
    "alert": {"user_id": (_STR, True), "alert_kind": (_STR, True), "severity": (_STR, True), "detail": (_STR, True)},
    "snapshot": {"user_id": (_STR, True)},
}
"""What each update kind must carry, checked before an update is acknowledged."""
KINDS = tuple(SCHEMA)
COMMON = {"kind": (_STR, True), "message_id": (_STR, False), "model_version": (_STR, False)}
MAX_FIELD_CHARS = 10_000


def validate_update(update: object) -> None:
    """``InputError`` naming the first problem of ``update``; returns quietly for an update the writer can apply."""
    if not isinstance(update, dict):
        raise InputError(f"an update must be a dict, got {type(update).__name__}")
    kind = update.get("kind")
    if kind not in SCHEMA:
        raise InputError(f"update kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fields = {**COMMON, **SCHEMA[kind]}
    unknown = sorted(set(update) - set(fields))
    if unknown:
        raise InputError(f"a {kind} update has unknown fields {unknown}; valid: {', '.join(sorted(fields))}")
    for name, (kind_of, required) in fields.items():
        if name not in update:
            if required:
                raise InputError(f"a {kind} update needs {name} ({kind_of})")
            continue
        value = update[name]
        if not _has_type(value, kind_of, required):
            wanted = "a non-empty string" if kind_of == _STR and required else kind_of
            raise InputError(f"a {kind} update's {name} must be {wanted} (strings: at most {MAX_FIELD_CHARS} characters), "
                             f"got {type(value).__name__} {str(value)[:40]!r}")
    try:
        json.dumps(update, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"a {kind} update must be JSON-serialisable: {exc}") from exc
    confidence = update.get("confidence")
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise InputError(f"a {kind} update's confidence must be between 0 and 1, got {confidence}")


def _has_type(value: object, kind_of: str, required: bool) -> bool:
    if kind_of == _STR:
        return isinstance(value, str) and len(value) <= MAX_FIELD_CHARS and (bool(value.strip()) or not required)
    if kind_of == _NUM:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return True  # _JSON: checked for the whole update below


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


TRANSIENT = (pw.OperationalError, pw.InterfaceError)
"""Database errors that say nothing about the update (locked, connection lost): retried, never dead-lettered."""


class ContextSyncManager:
    def __init__(self, store: PersonalityDB, *, on_dead_letter: Callable[[int, str], None] | None = None) -> None:
        self.store = store
        self.on_dead_letter = on_dead_letter
        self._writer = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- producers ---------------------------------------------------------------------------
    def queue_update(self, source_slm: str, update: dict[str, Any], *, idempotency_key: str | None = None) -> Ack:
        """Persist ``update`` (``{"kind": ..., "user_id": ..., ...}``) to the outbox; returns once it is durable."""
        return self.queue_updates([(source_slm, update, idempotency_key)])[0]

    def queue_updates(self, items: list[tuple[str, dict[str, Any], str | None]]) -> list[Ack]:
        """Several ``(source, update, idempotency_key)`` in one transaction (one commit per turn, not per update).
        Every item is validated first: one bad item refuses the whole batch and nothing is written."""
        for source, update, key in items:
            validate_update(update)
            if not isinstance(source, str) or not source or (key is not None and (not isinstance(key, str) or not key)):
                raise InputError("source must be a non-empty string and idempotency_key a non-empty string or None")
        keyed = [(source, update, key or uuid.uuid4().hex) for source, update, key in items]
        outbox = self.store.Outbox
        try:
            with self.store.write_transaction():
                existing = {r.idempotency_key: r.id for r in
                            outbox.select(outbox.id, outbox.idempotency_key)
                            .where(outbox.idempotency_key.in_([k for _, _, k in keyed]))}
                acks = []
                for source, update, key in keyed:
                    if key in existing:
                        acks.append(Ack(existing[key], key, duplicate=True))
                        continue
                    row = outbox.create(idempotency_key=key, source=source, user_id=update.get("user_id", ""),
                                        payload=json.dumps(update, sort_keys=True))
                    existing[key] = row.id
                    acks.append(Ack(row.id, key, duplicate=False))
        except pw.IntegrityError:  # a key raced in from another thread or process: retry, now it is a duplicate
            return self.queue_updates(items)
        self._wake.set()
        return acks

    # -- the writer --------------------------------------------------------------------------
    def process_queue(self, limit: int = 0) -> int:
        """Apply pending updates in queue order; returns how many were handled (applied or dead-lettered)."""
        handled = 0
        with self._writer:
            while not limit or handled < limit:
                outcome = self._handle_next()
                if outcome is None:
                    break
                handled += 1
        return handled

    def _handle_next(self) -> bool | None:
        """Apply the oldest pending update. None: the queue is empty; True: applied; False: dead-lettered."""
        outbox = self.store.Outbox
        row = None
        try:
            with self.store.writer_transaction():
                row = outbox.select().where(~outbox.applied).order_by(outbox.id).first()
                if row is None:
                    return None
                outbox.update(applied=True).where(outbox.id == row.id).execute()
                self._apply(row.id, row.source, json.loads(row.payload))
                return True
        except TRANSIENT:
            raise
        except Exception as exc:  # the update itself cannot be applied: it must not stop the ones behind it
            if row is None:
                raise
            reason = f"{type(exc).__name__}: {exc}"
        self._dead_letter(row.id, reason)
        return False

    def _dead_letter(self, outbox_id: int, reason: str) -> None:
        s = self.store
        with s.writer_transaction():
            row = s.Outbox.get_by_id(outbox_id)
            if row.applied:  # another writer handled it meanwhile
                return
            s.Outbox.update(applied=True).where(s.Outbox.id == outbox_id).execute()
            s.DeadLetter.create(outbox_id=outbox_id, source=row.source, user_id=row.user_id, payload=row.payload, reason=reason[:2000])
            user = s.User.get_or_none(s.User.user_id == row.user_id) if row.user_id else None
            s.Alert.create(user=user, kind="dead_letter", severity="high",
                           detail=f"update {outbox_id} from {row.source} was not applied: {reason[:500]}")
        log.error("sync writer: update %s from %s dead-lettered: %s", outbox_id, row.source, reason)
        if self.on_dead_letter is not None:
            self.on_dead_letter(outbox_id, reason)

    def _apply(self, outbox_id: int, source: str, update: dict[str, Any]) -> None:
        s = self.store
        kind = update["kind"]
        if kind == "module_run":
            s.ModuleRun.create(module=update["module"], status=update["status"], latency_ms=update["latency_ms"],
                               model_version=update.get("model_version") or "", user_id=update.get("user_id", ""))
            return
        user, _ = s.User.get_or_create(user_id=update["user_id"])
        if kind == "dimension":
            dim, created = s.ProfileDimension.get_or_create(user=user, key=update["key"], defaults={"value": "null"})
            old = None if created else dim.value
            dim.value = json.dumps(update["value"])
            dim.confidence = float(update.get("confidence", 0.5))
            dim.evidence_count += 1
            dim.updated = utcnow()
            dim.save()
            self._log(outbox_id, source, user, update, update["key"], old, dim.value)
        elif kind == "slang":
            term, created = s.SlangTerm.get_or_create(user=user, term=update["term"].lower(), defaults={
                "gloss": update.get("gloss", ""), "example": update.get("example", "")})
            if not created:
                term.count += 1
                term.save()
            self._log(outbox_id, source, user, update, f"slang:{term.term}", None if created else str(term.count - 1), str(term.count))
        elif kind == "alert":
            s.Alert.create(user=user, kind=update["alert_kind"], severity=update["severity"], detail=update["detail"])
            self._log(outbox_id, source, user, update, f"alert:{update['alert_kind']}", None, update["severity"])
        elif kind == "snapshot":
            latest = s.ProfileVersion.select(pw.fn.MAX(s.ProfileVersion.version)).where(s.ProfileVersion.user == user).scalar() or 0
            snapshot = {d.key: json.loads(d.value) for d in user.dimensions}
            s.ProfileVersion.create(user=user, version=latest + 1, snapshot=json.dumps(snapshot, sort_keys=True))
            self._log(outbox_id, source, user, update, "profile_version", str(latest), str(latest + 1))

    def _log(self, outbox_id: int, source: str, user: Any, update: dict[str, Any], key: str, old: str | None, new: str | None) -> None:
        self.store.UpdateLog.create(user=user, source_module=source, message_id=update.get("message_id", ""), key=key,
                                    old=old, new=new, model_version=update.get("model_version") or "", outbox_id=outbox_id)

    def start(self, interval_s: float = 0.05) -> None:
        """Run the writer in a background thread (woken by each ``queue_update``). It survives anything:
        transient database errors are retried on the next wake, anything else is logged and the loop goes on."""
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(interval_s)
                self._wake.clear()
                try:
                    self.process_queue()
                except TRANSIENT as exc:  # e.g. the database briefly locked by another process: retry
                    log.warning("sync writer: %s; retrying", exc)
                except Exception:
                    log.exception("sync writer: unexpected error; retrying")

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
        s = self.store
        dims = list(s.ProfileDimension.select().join(s.User).where(s.User.user_id == user_id))
        slang = {t.term: t.gloss for t in s.SlangTerm.select().join(s.User).where(s.User.user_id == user_id)}
        version = (s.ProfileVersion.select(pw.fn.MAX(s.ProfileVersion.version))
                   .join(s.User).where(s.User.user_id == user_id).scalar() or 0)
        pending = s.Outbox.select().where((s.Outbox.user_id == user_id) & ~s.Outbox.applied).count()
        return ProfileContext(user_id, {d.key: json.loads(d.value) for d in dims}, {d.key: d.confidence for d in dims},
                              slang, version, pending)
