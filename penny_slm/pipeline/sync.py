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
- Learning updates (``dimension``, ``slang``) and control updates (``decision``, ``rollback``,
  ``snapshot``) are applied through ``controls.LearningPolicy``: rate limits, the approval queue, profile
  versions and the transparency log happen here, inside the writer's transaction. Two control writes
  skip the queue and take the same write lock: :meth:`ContextSyncManager.set_control` (the kill switch,
  in force between two queued updates) and :meth:`ContextSyncManager.delete_user`.
- The writer thread also keeps the history bounded: every ``maintenance_interval_s`` it queues what is
  due in the approval queue (expiries, deferred changes whose window has room), and every
  ``prune_interval_s`` it deletes rows older than ``learning.retention_days``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from penny_slm.config import LearningConfig, RetentionConfig
from penny_slm.errors import InputError
from penny_slm.pipeline.controls import SOURCE as CONTROLS, LearningPolicy, iso
from penny_slm.pipeline.db import PersonalityDB, utcnow

log = logging.getLogger(__name__)

_STR, _NUM, _INT, _BOOL, _JSON = "a string", "a number", "an integer", "true or false", "any JSON value"
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    # kind -> field -> (type, required). Every kind may also carry message_id and model_version (strings).
    "dimension": {"user_id": (_STR, True), "key": (_STR, True), "value": (_JSON, True), "confidence": (_NUM, False),
                  "evidence": (_STR, False)},
    "slang": {"user_id": (_STR, True), "term": (_STR, True), "gloss": (_STR, False), "example": (_STR, False),
              "adopt": (_BOOL, False), "evidence": (_STR, False)},
    "module_run": {"module": (_STR, True), "status": (_STR, True), "latency_ms": (_NUM, True), "user_id": (_STR, False)},
    "alert": {"user_id": (_STR, True), "alert_kind": (_STR, True), "severity": (_STR, True), "detail": (_STR, True)},
    "snapshot": {"user_id": (_STR, True)},
    "decision": {"user_id": (_STR, True), "pending_id": (_INT, True), "action": (_STR, True)},
    "rollback": {"user_id": (_STR, True), "version": (_INT, True)},
    "drift_turn": {"user_id": (_STR, True), "message": (_STR, False), "response": (_STR, False), "keep": (_INT, True)},
    "alert_ack": {"user_id": (_STR, True), "alert_id": (_INT, True)},
    "drift_state": {"user_id": (_STR, True), "checked": (_INT, True), "baseline": (_JSON, False), "scorer": (_STR, False)},
}
"""What each update kind must carry, checked before an update is acknowledged."""
KINDS = tuple(SCHEMA)
DECISIONS = ("approve", "reject", "expire", "release")
"""``decision`` actions: a person's approve / reject; expire and release are queued by the writer's maintenance."""
POLICY_KINDS = frozenset({"dimension", "slang", "snapshot", "decision", "rollback"})
DEFAULT_LEARNING = LearningConfig()
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
    if kind == "decision" and update["action"] not in DECISIONS:
        raise InputError(f"a decision's action must be one of {', '.join(DECISIONS)}, got {update['action']!r}")


def _has_type(value: object, kind_of: str, required: bool) -> bool:
    if kind_of == _STR:
        return isinstance(value, str) and len(value) <= MAX_FIELD_CHARS and (bool(value.strip()) or not required)
    if kind_of == _NUM:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind_of == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind_of == _BOOL:
        return isinstance(value, bool)
    return True  # _JSON: checked for the whole update below


@dataclass(frozen=True, slots=True)
class Ack:
    """The receipt for a queued update: once returned, the update is durable and will be applied once."""
    outbox_id: int
    idempotency_key: str
    duplicate: bool  # True: this key was queued before; nothing new was added


@dataclass(frozen=True, slots=True)
class ProfileContext:
    """``slang``: term → gloss, every term the user uses; ``adopted``: the terms a person approved for Penny's own voice."""

    user_id: str
    dimensions: dict[str, Any]
    confidence: dict[str, float]
    slang: dict[str, str]
    version: int
    pending_updates: int
    adopted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DriftHistory:
    """A user's stored drift history: ``turns`` ``(turn number, message, response)`` oldest first (the bounded window);
    ``baseline``: the persona baseline from their first turns (``drift.Baseline`` as a dict; None until built),
    ``scorer`` what scored it; ``checked``: how many of their turns a check has judged."""

    turns: list[tuple[int, str, str]]
    baseline: dict[str, Any] | None
    scorer: str
    checked: int


MAINTENANCE_INTERVAL_S = 60.0
PRUNE_INTERVAL_S = 3600.0
TRANSIENT = (pw.OperationalError, pw.InterfaceError)
"""Database errors that say nothing about the update (locked, connection lost): retried, never dead-lettered."""


class ContextSyncManager:
    """The only writer of the profile database: a durable outbox, idempotency keys and one ordered writer thread that
    applies each update through the learning controls."""
    def __init__(self, store: PersonalityDB, *, learning: LearningConfig | None = DEFAULT_LEARNING,
                 on_dead_letter: Callable[[int, str], None] | None = None, now: Callable[[], datetime] = utcnow) -> None:
        """``learning``: the controls' settings (None: no rate limits or approval routing, for the queue's own
        tests; the kill switch, versions and decisions still apply); ``now``: the clock of the rate windows,
        expiries and retention (tests move it)."""
        self.store = store
        self.on_dead_letter = on_dead_letter
        self.now = now
        self.policy = LearningPolicy(store, learning, now)
        self.retention = learning.retention_days if learning is not None else RetentionConfig()
        self.maintenance_interval_s = MAINTENANCE_INTERVAL_S
        self.prune_interval_s = PRUNE_INTERVAL_S
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
        if kind in POLICY_KINDS:
            self.policy.apply(outbox_id, source, update)
        elif kind == "module_run":
            s.ModuleRun.create(module=update["module"], status=update["status"], latency_ms=update["latency_ms"],
                               model_version=update.get("model_version") or "", user_id=update.get("user_id", ""))
        elif kind == "drift_turn":  # the drift monitor's window: append (numbered), then keep the newest ``keep`` turns
            user, _ = s.User.get_or_create(user_id=update["user_id"])
            t = s.DriftTurn
            last = t.select(pw.fn.MAX(t.turn)).where(t.user == user).scalar()
            checked = s.DriftProfile.select(s.DriftProfile.checked).where(s.DriftProfile.user == user).scalar() or 0
            # after the last turn, or after the turns judged if retention pruned every stored one (not judged again)
            t.create(user=user, message=update.get("message", ""), response=update.get("response", ""), at=self.now(),
                     turn=max(checked, 0 if last is None else last + 1))
            old = [r.id for r in t.select(t.id).where(t.user == user).order_by(t.id.desc()).offset(max(1, update["keep"]))]
            if old:
                t.delete().where(t.id.in_(old)).execute()
        elif kind == "drift_state":  # the drift monitor's per-user baseline and how many turns it has judged
            user, _ = s.User.get_or_create(user_id=update["user_id"])
            d = s.DriftProfile
            fields: dict[Any, Any] = {d.checked: update["checked"], d.at: self.now()}
            if update.get("baseline") is not None:
                fields |= {d.baseline: json.dumps(update["baseline"]), d.scorer: update.get("scorer", "")}
            d.insert({d.user: user, **fields}).on_conflict(conflict_target=[d.user], update=fields).execute()
        elif kind == "alert_ack":
            a = s.Alert
            done = (a.update(acknowledged=self.now())
                    .where((a.id == update["alert_id"]) & (a.user == update["user_id"]) & a.acknowledged.is_null()).execute())
            if done:
                s.UpdateLog.create(user=update["user_id"], source_module=source, message_id="", key=f"alert_ack:{update['alert_id']}",
                                   new=json.dumps(True), model_version="", outbox_id=outbox_id, at=self.now())
        else:  # alert
            user, _ = s.User.get_or_create(user_id=update["user_id"])
            s.Alert.create(user=user, kind=update["alert_kind"], severity=update["severity"], detail=update["detail"])
            s.UpdateLog.create(user=user, source_module=source, message_id=update.get("message_id", ""),
                               key=f"alert:{update['alert_kind']}", new=json.dumps(update["severity"]),
                               model_version=update.get("model_version") or "", outbox_id=outbox_id, at=self.now())

    # -- control writes outside the queue (same write lock) --------------------------------------------------------
    def set_control(self, setting: str, value: Any, reason: str = "") -> None:
        """Record a global control (the kill switch) now, between two queued updates rather than after the backlog."""
        with self.store.writer_transaction():
            self.store.ControlState.create(setting=setting, value=json.dumps(value), reason=reason, at=self.now())
        log.warning("learning controls: %s set to %s%s", setting, json.dumps(value), f" ({reason})" if reason else "")

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete every row about ``user_id`` in one transaction, queued updates included (so nothing of theirs is
        applied afterwards and no request naming them stays behind); rows deleted per table."""
        s = self.store
        by_user: list[Any] = [s.DeadLetter, s.Outbox, s.ModuleRun]
        by_fk: list[Any] = [s.Alert, s.UpdateLog, s.PendingChange, s.ProfileVersion, s.SlangTerm, s.ProfileDimension,
                            s.DriftTurn, s.DriftProfile]
        rows: dict[str, int] = {}
        with self._writer, s.writer_transaction():
            for model in by_user:
                rows[model._meta.table_name] = model.delete().where(model.user_id == user_id).execute()
            for model in by_fk:
                rows[model._meta.table_name] = model.delete().where(model.user == user_id).execute()
            rows["user"] = s.User.delete().where(s.User.user_id == user_id).execute()
        log.warning("learning controls: deleted everything stored about a user (%d rows)", sum(rows.values()))
        return rows

    # -- upkeep ----------------------------------------------------------------------------------------------------
    def maintain(self) -> int:
        """Queue what is due in the approval queue: expiries, and deferred changes whose window has room (not while
        learning is off). Returns how many decisions were queued."""
        now = self.now()
        p = self.store.PendingChange
        items: list[tuple[str, dict[str, Any], str | None]] = [
            (CONTROLS, {"kind": "decision", "user_id": r.user_id, "pending_id": r.id, "action": "expire"}, f"expire-{r.id}")
            for r in p.select(p.id, p.user).where((p.state == "awaiting_approval") & (p.expires <= now))]
        if not self.policy.blocked():
            minute = int(now.timestamp()) // 60  # a release that found learning off is queued again a minute later
            items += [(CONTROLS, {"kind": "decision", "user_id": r.user_id, "pending_id": r.id, "action": "release"},
                       f"release-{r.id}-{minute}")
                      for r in p.select(p.id, p.user).where((p.state == "deferred") & (p.not_before <= now))]
        if items:
            self.queue_updates(items)
        return len(items)

    def prune(self) -> dict[str, int]:
        """Delete history older than ``learning.retention_days`` (rows per table). Never a queued update that is still
        pending, an approval-queue entry still waiting, a profile version (rollback needs them) or a profile value."""
        s, r, now = self.store, self.retention, self.now()

        def before(days: float) -> datetime:
            return now - timedelta(days=days)

        p = s.PendingChange
        with s.writer_transaction():
            rows = {
                "outbox": s.Outbox.delete().where(s.Outbox.applied & (s.Outbox.queued < before(r.outbox))).execute(),
                "modulerun": s.ModuleRun.delete().where(s.ModuleRun.at < before(r.module_runs)).execute(),
                "updatelog": s.UpdateLog.delete().where(s.UpdateLog.at < before(r.update_log)).execute(),
                "pendingchange": p.delete().where(p.state.not_in(("awaiting_approval", "deferred"))
                                                  & (p.decided < before(r.update_log))).execute(),
                "alert": s.Alert.delete().where(s.Alert.at < before(r.alerts)).execute(),
                "deadletter": s.DeadLetter.delete().where(s.DeadLetter.at < before(r.alerts)).execute(),
                "driftturn": s.DriftTurn.delete().where(s.DriftTurn.at < before(r.drift_turns)).execute(),
                "driftprofile": s.DriftProfile.delete().where(s.DriftProfile.at < before(r.drift_turns)).execute(),
            }
        if any(rows.values()):
            log.info("sync writer: pruned %s", {k: v for k, v in rows.items() if v})
        return rows

    def start(self, interval_s: float = 0.05) -> None:
        """Run the writer in a background thread (woken by each ``queue_update``), with its upkeep (:meth:`maintain`,
        :meth:`prune`) on their intervals, the first time at once. It survives anything: transient database errors
        are retried on the next wake, anything else is logged and the loop goes on."""
        due = {"maintain": 0.0, "prune": 0.0}

        def upkeep() -> None:
            clock = time.monotonic()
            if clock >= due["maintain"]:
                due["maintain"] = clock + self.maintenance_interval_s
                self.maintain()
            if clock >= due["prune"]:
                due["prune"] = clock + self.prune_interval_s
                self.prune()

        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(interval_s)
                self._wake.clear()
                try:
                    upkeep()
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
        terms = list(s.SlangTerm.select().join(s.User).where(s.User.user_id == user_id))
        slang = {t.term: t.gloss for t in terms}
        version = (s.ProfileVersion.select(pw.fn.MAX(s.ProfileVersion.version))
                   .join(s.User).where(s.User.user_id == user_id).scalar() or 0)
        pending = s.Outbox.select().where((s.Outbox.user_id == user_id) & ~s.Outbox.applied).count()
        return ProfileContext(user_id, {d.key: json.loads(d.value) for d in dims}, {d.key: d.confidence for d in dims},
                              slang, version, pending, tuple(sorted(t.term for t in terms if t.adopted)))

    def drift_history(self, user_id: str) -> DriftHistory:
        """What the drift monitor rebuilds a user's state from: the stored window and the per-user profile."""
        t, d = self.store.DriftTurn, self.store.DriftProfile
        turns = [(r.turn, r.message, r.response) for r in t.select().where(t.user == user_id).order_by(t.id)]
        profile = d.get_or_none(d.user == user_id)
        if profile is None:
            return DriftHistory(turns, None, "", 0)
        baseline = json.loads(profile.baseline) if profile.baseline else None
        return DriftHistory(turns, baseline, profile.scorer, profile.checked)

    def alerts(self, user_id: str, *, unacknowledged: bool = False) -> list[dict[str, Any]]:
        """``user_id``'s alerts, newest first: ``{id, kind, severity, detail, at, acknowledged}`` (ISO 8601 times)."""
        a = self.store.Alert
        query = a.select().where(a.user == user_id)
        if unacknowledged:
            query = query.where(a.acknowledged.is_null())
        return [{"id": r.id, "kind": r.kind, "severity": r.severity, "detail": r.detail, "at": iso(r.at),
                 "acknowledged": iso(r.acknowledged)} for r in query.order_by(a.id.desc())]

    def acknowledge_alert(self, user_id: str, alert_id: int) -> Ack:
        """Queue the acknowledgement of one alert (the writer stamps it; acknowledging twice changes nothing)."""
        return self.queue_update("controls", {"kind": "alert_ack", "user_id": user_id, "alert_id": alert_id},
                                 idempotency_key=f"alert-ack-{user_id}-{alert_id}")
