"""Privacy and safety controls on what Penny learns: rate limits, human approval, profile versions and rollback,
the transparency log, export and delete, the kill switch, retention.

Two halves, both working on the context sync manager's writes:

- :class:`LearningPolicy` runs *inside the sync writer's transaction* for every ``dimension`` and ``slang``
  update, and for the control updates (``decision``, ``rollback``, ``snapshot``). It decides what each learning
  update may do (``results.LogAction``) and writes one transparency-log row per queued update:

  | what                                        | control                                                       |
  |---------------------------------------------|---------------------------------------------------------------|
  | learning off (kill switch, or config)       | ``blocked``: nothing applied, the log says why                 |
  | a ``persona.*`` key                         | ``awaiting_approval``, always                                  |
  | slang with ``adopt: true`` (Penny's voice)  | ``awaiting_approval``, always                                  |
  | a numeric change above ``approval_threshold``| ``awaiting_approval``                                        |
  | a rate-limited dimension over its window    | ``clipped`` to what the window has left, or ``deferred`` when  |
  |                                             | nothing is left (applied by itself when the window has room)   |
  | more new slang terms than a day allows      | ``deferred``                                                   |
  | anything else                               | ``applied``                                                    |

  A first value (nothing stored yet) has no movement to bound and applies. Rate limits count the learned
  movement (``applied`` and ``clipped`` rows, sum of absolute changes) in the last ``rate_window_hours``;
  approvals and rollbacks are a person's decisions and count for nothing. A newer update for a dimension
  supersedes its older deferred one (one deferral per dimension: the latest estimate).

- :class:`LearningControls` (``layer.controls``) is the API for Penny and the CLI. Approve, reject and rollback
  are queued like any other update and applied by the one ordered writer (so two decisions racing on one entry,
  or a rollback in a stream of updates, are ordered by the queue and the first decision wins). Two writes do not
  go through the queue, because they must not wait behind it or leave a trace in it, and are done by the sync
  manager under the same write lock: the kill switch (``set_control``; it takes effect between two queued
  updates) and ``delete`` (a queued delete would leave the user's id in the outbox).

Nothing here opens a network connection; a profile's data never leaves the machine unless ``export`` is called.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from penny_slm.config import LearningConfig
from penny_slm.errors import InputError
from penny_slm.pipeline.db import PersonalityDB, utcnow
from penny_slm.results import (
    ControlStatus,
    Decision,
    DeleteReport,
    LogEntry,
    PendingEntry,
    PreferenceUpdate,
    ProfileVersionInfo,
)

if TYPE_CHECKING:
    from penny_slm.pipeline.sync import ContextSyncManager

log = logging.getLogger(__name__)

KILL_SWITCH = "kill_switch"
PERSONA_PREFIX = "persona."
SLANG_PREFIX = "slang:"
EXCERPT_CHARS = 80
EPSILON = 1e-9
LEARNED = ("applied", "clipped")
"""Log actions that count against a rate limit: movement the models made, not a person."""
HELD = ("awaiting_approval", "deferred")
SOURCE = "controls"
EXPORT_FORMAT = "penny-slm-export/1"


def evidence_of(text: str, setting: str) -> str:
    """What the transparency log keeps of ``text`` (``learning.log_message_text``): ``excerpt`` = at most
    :data:`EXCERPT_CHARS` characters, whitespace collapsed; ``hash`` = ``sha256:<hex>`` of the text, no text at all.
    An unkeyed hash of a short message can be matched by someone who guesses the message; it proves which message
    it was, it does not hide a guessable one."""
    if not text:
        return ""
    if setting == "hash":
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1].rstrip() + "…"


def learning_items(user_id: str, message_id: str, updates: Iterable[dict[str, Any] | PreferenceUpdate], *, message: str,
                   model_version: str | None, log_message_text: str) -> list[tuple[str, dict[str, Any], str | None]]:
    """One turn's learning updates as sync-queue items ``(source, update, idempotency_key)``, followed by the
    ``snapshot`` that makes the batch a profile version. ``PreferenceUpdate``s become ``dimension`` or ``slang``
    updates (message id = ``source_turn``; evidence per the privacy setting); dicts ``{"key", "value",
    "confidence"?}`` become ``dimension`` updates whose evidence is the turn's message. Updates the queue would
    refuse are left out and logged: a bad update never costs the turn its other writes."""
    from penny_slm.pipeline.sync import validate_update

    items: list[tuple[str, dict[str, Any], str | None]] = []
    for i, update in enumerate(updates):
        queued = _queued(user_id, message_id, update, message, model_version or "", log_message_text)
        try:
            validate_update(queued)
        except InputError as exc:
            log.warning("context: update %s left out: %s", i, exc)
            continue
        items.append(("context", queued, f"{message_id}-ctx-{i}"))
    if items:
        items.append(("context", {"kind": "snapshot", "user_id": user_id, "message_id": message_id}, f"{message_id}-version"))
    return items


def _queued(user_id: str, message_id: str, update: Any, message: str, model_version: str, setting: str) -> Any:
    if isinstance(update, PreferenceUpdate):
        common = {"user_id": user_id, "message_id": update.source_turn or message_id,
                  "model_version": update.model_version or model_version,
                  "evidence": evidence_of(update.evidence or message, setting)}
        if update.key.startswith(SLANG_PREFIX):
            term = update.key[len(SLANG_PREFIX):]
            new = update.new if isinstance(update.new, dict) else {"gloss": update.new}
            slang = {"kind": "slang", **common, "term": term, "gloss": new.get("gloss") or "", "adopt": new.get("adopt", False)}
            if setting == "excerpt" and update.evidence:
                slang["example"] = evidence_of(update.evidence, setting)
            return slang
        return {"kind": "dimension", **common, "key": update.key, "value": update.new, "confidence": update.confidence}
    if not isinstance(update, dict):
        return update  # validate_update says what is wrong with it
    evidence = update.get("evidence") if isinstance(update.get("evidence"), str) else ""
    fields = {k: v for k, v in update.items() if k not in ("kind", "user_id", "evidence")}  # a module never picks the user
    return {"message_id": message_id, "model_version": model_version, **fields, "kind": "dimension", "user_id": user_id,
            "evidence": evidence_of(evidence or message, setting)}


# -- the writer's side ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Verdict:
    """What a learning update may do. ``value``: what to apply (``applied``/``clipped``) or what was asked (held)."""

    action: Literal["applied", "clipped", "deferred", "awaiting_approval", "blocked"]
    value: Any
    detail: str = ""
    not_before: datetime | None = None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def aware(value: datetime | None) -> datetime | None:
    """Timestamps read back as UTC-aware (PostgreSQL returns them naive, in the UTC session zone)."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """A stored timestamp as ISO 8601 in UTC (naive database values are read as UTC); None stays None."""
    stamp = aware(value)
    return None if stamp is None else stamp.isoformat()


def read_snapshot(text: str) -> dict[str, Any]:
    """A version's profile, ``{"dimensions", "confidence", "slang"}``; versions written before slang was versioned
    hold the dimensions alone (``slang`` is then None: a rollback to them leaves the slang lexicon as it is)."""
    data = json.loads(text)
    if isinstance(data, dict) and set(data) == {"dimensions", "confidence", "slang"}:
        return data
    return {"dimensions": data, "confidence": {}, "slang": None}


class LearningPolicy:
    """Applies learning and control updates inside the sync writer's transaction (see the module docstring).

    ``cfg`` None: no rate limits and no approval routing (the queue's own tests); the database's kill switch,
    versions, decisions and rollbacks still work."""

    def __init__(self, store: PersonalityDB, cfg: LearningConfig | None, now: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.cfg = cfg
        self.now = now

    # -- dispatch --------------------------------------------------------------------------------------------------
    def apply(self, outbox_id: int, source: str, update: dict[str, Any]) -> None:
        """Apply one queued update (``dimension``, ``slang``, ``decision``, ``rollback``, ``snapshot``) in the writer's transaction."""
        kind = update["kind"]
        s = self.store
        if kind == "decision":
            self._decision(outbox_id, source, update)
            return
        user, _ = s.User.get_or_create(user_id=update["user_id"])
        if kind == "snapshot":
            version = self.new_version(user, "a batch of learned updates", skip_unchanged=True)
            if version is not None:
                self._log(outbox_id, source, user, update, "profile_version", version - 1, version, "version")
        elif kind == "rollback":
            self._rollback(outbox_id, source, user, update)
        else:
            blocked = self.blocked()
            if blocked:
                key = update["key"] if kind == "dimension" else SLANG_PREFIX + update["term"].lower()
                asked = update["value"] if kind == "dimension" else update.get("gloss", "")
                self._log(outbox_id, source, user, update, key, None, asked, "blocked", blocked)
            elif kind == "dimension":
                self._dimension(outbox_id, source, user, update)
            else:
                self._slang(outbox_id, source, user, update)

    def kill_switch(self) -> tuple[bool, Any]:
        """(the database's kill switch, its latest control row or None)."""
        c = self.store.ControlState
        row = c.select().where(c.setting == KILL_SWITCH).order_by(c.id.desc()).first()
        return (bool(json.loads(row.value)) if row is not None else False), row

    def blocked(self) -> str:
        """Why learning is off right now ("" when it is on)."""
        if self.kill_switch()[0] or (self.cfg is not None and self.cfg.kill_switch):
            return "learning stopped: the kill switch is on (penny-slm resume, or learning.kill_switch: false)"
        if self.cfg is not None and not self.cfg.enabled:
            return "learning is off in the config (learning.enabled: false)"
        return ""

    # -- dimensions ------------------------------------------------------------------------------------------------
    def judge_dimension(self, user: Any, key: str, old: Any, new: Any) -> Verdict:
        """What the controls do with a change of one profile dimension: apply, clip, defer or hold for approval."""
        cfg = self.cfg
        if cfg is None:
            return Verdict("applied", new)
        if key.startswith(PERSONA_PREFIX):
            return Verdict("awaiting_approval", new, "a change to Penny's own persona waits for approval")
        if not (_number(old) and _number(new)):
            return Verdict("applied", new)
        delta = abs(new - old)
        if delta > cfg.approval_threshold + EPSILON:
            return Verdict("awaiting_approval", new, f"moves {key} by {delta:.3g}, more than learning.approval_threshold "
                                                     f"{cfg.approval_threshold:g}")
        limit = cfg.rate_limits.get(key)
        if limit is None:
            return Verdict("applied", new)
        used, oldest = self._used(user, key)
        left = max(0.0, limit - used)
        window = f"{key} may move {limit:g} per {cfg.rate_window_hours:g} h and {used:.3g} is used"
        if delta <= left + EPSILON:
            return Verdict("applied", new)
        if left > EPSILON:
            value = round(old + math.copysign(left, new - old), 6)
            return Verdict("clipped", value, f"asked {new!r}, applied {value!r}: {window}")
        not_before = (oldest or self.now()) + timedelta(hours=cfg.rate_window_hours)
        return Verdict("deferred", new, f"rate limit: {window}; applies after {not_before.isoformat(timespec='minutes')}",
                       not_before)

    def _used(self, user: Any, key: str) -> tuple[float, datetime | None]:
        """Learned movement of ``key`` in the rate window: (sum of absolute changes, when the oldest of them was)."""
        assert self.cfg is not None
        u = self.store.UpdateLog
        since = self.now() - timedelta(hours=self.cfg.rate_window_hours)
        used, oldest = 0.0, None
        for row in u.select(u.old, u.new, u.at).where((u.user == user) & (u.key == key) & u.action.in_(LEARNED) & (u.at > since)):
            old, new = _loads(row.old), _loads(row.new)
            if _number(old) and _number(new) and abs(new - old) > EPSILON:
                used += abs(new - old)
                at = aware(row.at)
                oldest = at if oldest is None or (at is not None and at < oldest) else oldest
        return used, oldest

    def _dimension(self, outbox_id: int, source: str, user: Any, update: dict[str, Any], pending: Any = None) -> None:
        s = self.store
        key, new = update["key"], update["value"]
        dim = s.ProfileDimension.get_or_none((s.ProfileDimension.user == user) & (s.ProfileDimension.key == key))
        old = None if dim is None else json.loads(dim.value)
        superseded = self._supersede(user, "dimension", key, outbox_id, keep=pending)
        verdict = self.judge_dimension(user, key, old, new)
        note = f"supersedes deferred change #{', #'.join(map(str, superseded))}" if superseded else ""
        if verdict.action in LEARNED:
            self.set_dimension(user, key, verdict.value, update.get("confidence", 0.5))
        self._route(outbox_id, source, user, update, "dimension", key, old, verdict, pending, note)

    def set_dimension(self, user: Any, key: str, value: Any, confidence: float) -> None:
        """Write one dimension's new value and confidence and count the evidence (the verdict was already given)."""
        s = self.store
        dim, _ = s.ProfileDimension.get_or_create(user=user, key=key, defaults={"value": "null"})
        dim.value = json.dumps(value)
        dim.confidence = float(confidence)
        dim.evidence_count += 1
        dim.updated = self.now()
        dim.save()

    def _supersede(self, user: Any, kind: str, key: str, outbox_id: int, keep: Any) -> list[int]:
        """A newer update for ``key`` replaces its older deferred one (the latest estimate is what waits)."""
        p = self.store.PendingChange
        query = (p.user == user) & (p.kind == kind) & (p.key == key) & (p.state == "deferred")
        if keep is not None:
            query &= p.id != keep.id
        ids = [row.id for row in p.select(p.id).where(query)]
        if ids:
            p.update(state="superseded", decided=self.now(), decided_outbox_id=outbox_id).where(p.id.in_(ids)).execute()
        return ids

    # -- slang -----------------------------------------------------------------------------------------------------
    def judge_slang(self, user: Any, term: str, known: Any, adopt: bool) -> Verdict:
        """What the controls do with a slang term: adopting it into Penny's voice waits for approval, and new terms beyond
        ``learning.max_new_slang_per_day`` in 24 h are deferred."""
        if self.cfg is None:
            return Verdict("applied", None)
        if adopt and not (known is not None and known.adopted):
            return Verdict("awaiting_approval", None, "adopting a slang term into Penny's own voice waits for approval")
        if known is not None:
            return Verdict("applied", None)
        u = self.store.UpdateLog
        since = self.now() - timedelta(hours=24)
        new_terms = list(u.select(u.at).where((u.user == user) & u.key.startswith(SLANG_PREFIX) & u.old.is_null()
                                              & (u.action == "applied") & (u.at > since)).order_by(u.at))
        allowed = self.cfg.max_new_slang_per_day
        if len(new_terms) < allowed:
            return Verdict("applied", None)
        oldest = aware(new_terms[0].at) or self.now()
        not_before = oldest + timedelta(hours=24)
        return Verdict("deferred", None, f"{len(new_terms)} new slang terms in 24 h (learning.max_new_slang_per_day "
                                         f"{allowed}); applies after {not_before.isoformat(timespec='minutes')}", not_before)

    def _slang(self, outbox_id: int, source: str, user: Any, update: dict[str, Any], pending: Any = None) -> None:
        s = self.store
        term = update["term"].lower()
        known = s.SlangTerm.get_or_none((s.SlangTerm.user == user) & (s.SlangTerm.term == term))
        superseded = self._supersede(user, "slang", SLANG_PREFIX + term, outbox_id, keep=pending)
        verdict = self.judge_slang(user, term, known, bool(update.get("adopt", False)))
        count = None if known is None else known.count
        note = f"supersedes deferred change #{', #'.join(map(str, superseded))}" if superseded else ""
        if verdict.action == "applied":
            row = self.add_term(user, term, update)
            verdict = Verdict("applied", row.count, verdict.detail)
        else:
            verdict = Verdict(verdict.action, update.get("gloss", ""), verdict.detail, verdict.not_before)
        self._route(outbox_id, source, user, update, "slang", SLANG_PREFIX + term, count, verdict, pending, note)

    def add_term(self, user: Any, term: str, update: dict[str, Any], adopt: bool = False) -> Any:
        """Add a term to the user's lexicon, or count it again and fill in a gloss it lacked."""
        s = self.store
        row, created = s.SlangTerm.get_or_create(user=user, term=term, defaults={
            "gloss": update.get("gloss", ""), "example": update.get("example", ""), "first_seen": self.now()})
        if not created:
            row.count += 1
            if not row.gloss and update.get("gloss"):
                row.gloss = update["gloss"]
        if adopt:
            row.adopted = True
        row.save()
        return row

    # -- holding, deciding -----------------------------------------------------------------------------------------
    def _route(self, outbox_id: int, source: str, user: Any, update: dict[str, Any], kind: str, key: str, old: Any,
               verdict: Verdict, pending: Any, note: str) -> None:
        """Log the verdict; hold the update in the approval queue if it must wait (reusing ``pending``, a released
        deferral that must wait again)."""
        detail = "; ".join(d for d in (verdict.detail, note) if d)
        if verdict.action in HELD:
            now = self.now()
            expires = now + timedelta(hours=self.cfg.approval_expiry_hours) if self.cfg and verdict.action == "awaiting_approval" else None
            fields = {"state": verdict.action, "reason": verdict.detail, "expires": expires, "not_before": verdict.not_before,
                      "old": json.dumps(old), "new": json.dumps(verdict.value)}
            if pending is None:
                pending = self.store.PendingChange.create(user=user, kind=kind, key=key, payload=json.dumps(update, sort_keys=True),
                                                          source=source, created=now, **fields)
            else:
                for name, value in fields.items():
                    setattr(pending, name, value)
                pending.save()
            detail = f"change #{pending.id}: {detail}"
        elif pending is not None:
            pending.state, pending.decided, pending.decided_outbox_id = "released", self.now(), outbox_id
            pending.save()
            detail = f"deferred change #{pending.id} released" + (f"; {detail}" if detail else "")
        self._log(outbox_id, source, user, update, key, old, verdict.value, verdict.action, detail)

    def _decision(self, outbox_id: int, source: str, update: dict[str, Any]) -> None:
        """approve / reject / expire / release one approval-queue entry. Only an entry still waiting can be decided:
        a second decision (repeated, or racing from another process) finds it decided and changes nothing."""
        s = self.store
        pending = s.PendingChange.get_or_none(s.PendingChange.id == update["pending_id"])
        if pending is None or pending.user_id != update["user_id"]:
            return  # deleted with its user meanwhile: nothing to decide
        action, now = update["action"], self.now()
        payload = json.loads(pending.payload)
        user = pending.user
        if action == "release":
            if pending.state == "deferred" and (aware(pending.not_before) or now) <= now and not self.blocked():
                (self._dimension if pending.kind == "dimension" else self._slang)(outbox_id, source, user, payload, pending)
            return
        if pending.state != "awaiting_approval":
            return
        base = {**payload, "message_id": payload.get("message_id", ""), "model_version": payload.get("model_version", "")}
        expires = aware(pending.expires)
        if expires is not None and expires <= now:
            pending.state, pending.decided, pending.decided_outbox_id = "expired", now, outbox_id
            pending.save()
            self._log(outbox_id, source, user, base, pending.key, _loads(pending.old), _loads(pending.new), "expired",
                      f"change #{pending.id} was not approved before {expires.isoformat(timespec='minutes')}")
            return
        if action == "expire":
            return
        if action == "reject":
            pending.state, pending.decided, pending.decided_outbox_id = "rejected", now, outbox_id
            pending.save()
            self._log(outbox_id, source, user, base, pending.key, _loads(pending.old), _loads(pending.new), "rejected",
                      f"change #{pending.id} rejected by a person")
            return
        blocked = self.blocked()
        if blocked:
            self._log(outbox_id, source, user, base, pending.key, _loads(pending.old), _loads(pending.new), "blocked",
                      f"change #{pending.id} still awaits approval: {blocked}")
            return
        if pending.kind == "dimension":
            dim = s.ProfileDimension.get_or_none((s.ProfileDimension.user == user) & (s.ProfileDimension.key == pending.key))
            old = None if dim is None else json.loads(dim.value)
            self.set_dimension(user, pending.key, payload["value"], payload.get("confidence", 0.5))
            logged_old, logged_new, what = old, payload["value"], ""
        else:
            term = payload["term"].lower()
            known = s.SlangTerm.get_or_none((s.SlangTerm.user == user) & (s.SlangTerm.term == term))
            adopt = bool(payload.get("adopt", False))
            row = self.add_term(user, term, payload, adopt=adopt)
            logged_old = None if known is None else {"count": known.count, "adopted": known.adopted}
            logged_new, what = {"count": row.count, "adopted": row.adopted}, " (adopted into Penny's own voice)" if adopt else ""
        pending.state, pending.decided, pending.decided_outbox_id = "approved", now, outbox_id
        pending.save()
        version = self.new_version(user, f"change #{pending.id} approved")
        self._log(outbox_id, source, user, base, pending.key, logged_old, logged_new, "approved",
                  f"change #{pending.id} approved by a person{what}; profile v{version}")

    # -- versions --------------------------------------------------------------------------------------------------
    def snapshot(self, user: Any) -> dict[str, Any]:
        """The user's profile as stored now (dimensions, confidences, slang): what a profile version records."""
        s = self.store
        dims = list(s.ProfileDimension.select().where(s.ProfileDimension.user == user).order_by(s.ProfileDimension.key))
        terms = s.SlangTerm.select().where(s.SlangTerm.user == user).order_by(s.SlangTerm.term)
        return {"dimensions": {d.key: json.loads(d.value) for d in dims}, "confidence": {d.key: d.confidence for d in dims},
                "slang": {t.term: {"gloss": t.gloss, "adopted": bool(t.adopted)} for t in terms}}

    def latest_version(self, user: Any) -> Any:
        """The user's newest profile version row, or None before the first."""
        v = self.store.ProfileVersion
        return v.select().where(v.user == user).order_by(v.version.desc()).first()

    def new_version(self, user: Any, note: str, *, skip_unchanged: bool = False) -> int | None:
        """A new profile version of the stored profile; with ``skip_unchanged``, none if it equals the latest one."""
        latest = self.latest_version(user)
        snap = self.snapshot(user)
        if skip_unchanged and latest is not None and read_snapshot(latest.snapshot) == snap:
            return None
        number = (latest.version if latest is not None else 0) + 1
        self.store.ProfileVersion.create(user=user, version=number, snapshot=json.dumps(snap, sort_keys=True), note=note,
                                         at=self.now())
        return number

    def _rollback(self, outbox_id: int, source: str, user: Any, update: dict[str, Any]) -> None:
        """Restore version N's profile as a new version; history (versions, log) is never rewritten. Deferred changes
        are superseded: they were measured against the profile being rolled back."""
        s = self.store
        v = s.ProfileVersion
        target = v.get_or_none((v.user == user) & (v.version == update["version"]))
        if target is None:
            raise ValueError(f"user {update['user_id']!r} has no profile version {update['version']}")
        snap = read_snapshot(target.snapshot)
        before = self.snapshot(user)
        for key, value in snap["dimensions"].items():
            if before["dimensions"].get(key, object()) != value:
                self.set_dimension(user, key, value, snap["confidence"].get(key, before["confidence"].get(key, 0.5)))
        gone = [k for k in before["dimensions"] if k not in snap["dimensions"]]
        if gone:
            s.ProfileDimension.delete().where((s.ProfileDimension.user == user) & s.ProfileDimension.key.in_(gone)).execute()
        if snap["slang"] is not None:
            dropped = [t for t in before["slang"] if t not in snap["slang"]]
            if dropped:
                s.SlangTerm.delete().where((s.SlangTerm.user == user) & s.SlangTerm.term.in_(dropped)).execute()
            for term, entry in snap["slang"].items():
                row, _ = s.SlangTerm.get_or_create(user=user, term=term, defaults={"gloss": entry["gloss"], "first_seen": self.now()})
                row.gloss, row.adopted = entry["gloss"], entry["adopted"]
                row.save()
        p = s.PendingChange
        deferred = [r.id for r in p.select(p.id).where((p.user == user) & (p.state == "deferred"))]
        if deferred:
            p.update(state="superseded", decided=self.now(), decided_outbox_id=outbox_id).where(p.id.in_(deferred)).execute()
        latest = self.latest_version(user)
        number = self.new_version(user, f"rollback to v{target.version}")
        after = self.snapshot(user)
        changes = [f"{k} {before['dimensions'].get(k)!r} -> {after['dimensions'].get(k)!r}"
                   for k in sorted(set(before["dimensions"]) | set(after["dimensions"]))
                   if before["dimensions"].get(k) != after["dimensions"].get(k)]
        if before["slang"] != after["slang"]:
            changes.append("slang lexicon restored")
        if deferred:
            changes.append(f"deferred change #{', #'.join(map(str, deferred))} superseded")
        self._log(outbox_id, source, user, update, "profile_version", latest.version if latest else None, number, "rollback",
                  f"restored v{target.version} as v{number}: " + ("; ".join(changes) or "no change"))

    def _log(self, outbox_id: int, source: str, user: Any, update: dict[str, Any], key: str, old: Any, new: Any,
             action: str, detail: str = "") -> None:
        self.store.UpdateLog.create(user=user, source_module=source, message_id=update.get("message_id", ""), key=key,
                                    old=None if old is None else json.dumps(old), new=None if new is None else json.dumps(new),
                                    model_version=update.get("model_version") or "", outbox_id=outbox_id, action=action,
                                    detail=detail[:2000], evidence=update.get("evidence", ""), at=self.now())


# -- the API ----------------------------------------------------------------------------------------------------------

class LearningControls:
    """Privacy and safety controls for one personality database (``layer.controls``; the CLI's ``profile``,
    ``kill`` and ``resume``). Reads are plain queries; every write goes through ``sync`` (see the module docstring)."""

    def __init__(self, store: PersonalityDB, sync: ContextSyncManager, cfg: LearningConfig | None = None) -> None:
        self.store = store
        self.sync = sync
        self.cfg = cfg or LearningConfig()

    # -- kill switch -----------------------------------------------------------------------------------------------
    def status(self) -> ControlStatus:
        """Whether safe mode is on and learning runs, and why: the database's kill switch, the config's, or
        ``learning.enabled``."""
        on, row = self.sync.policy.kill_switch()
        safe = on or self.cfg.kill_switch
        return ControlStatus(safe, self.cfg.enabled and not safe, on, self.cfg.kill_switch, self.cfg.enabled,
                             iso(row.at) if row is not None else None, row.reason if row is not None else "")

    def safe_mode(self) -> bool:
        """The kill switch is on (the database's, or ``learning.kill_switch``): read on every turn."""
        return self.cfg.kill_switch or self.sync.policy.kill_switch()[0]

    def kill(self, reason: str = "") -> ControlStatus:
        """Stop all learning and all generative rewriting at once, until :meth:`resume` (survives restarts)."""
        self.sync.set_control(KILL_SWITCH, True, _text(reason, "reason"))
        return self.status()

    def resume(self, reason: str = "") -> ControlStatus:
        """Turn the database's kill switch off (``learning.kill_switch`` in the config, if set, still holds)."""
        self.sync.set_control(KILL_SWITCH, False, _text(reason, "reason"))
        return self.status()

    # -- reading ---------------------------------------------------------------------------------------------------
    def show(self, user_id: str) -> dict[str, Any]:
        """The profile as the prompt builder reads it, with its version, slang details and what waits."""
        user_id = _user(user_id)
        s = self.store
        ctx = self.sync.get_latest_context(user_id)
        terms = s.SlangTerm.select().join(s.User).where(s.User.user_id == user_id).order_by(s.SlangTerm.term)
        return {"user_id": user_id, "version": ctx.version, "dimensions": ctx.dimensions, "confidence": ctx.confidence,
                "slang": {t.term: {"gloss": t.gloss, "adopted": bool(t.adopted), "count": t.count} for t in terms},
                "pending_updates": ctx.pending_updates, "awaiting_approval": self._count(user_id, "awaiting_approval"),
                "deferred": self._count(user_id, "deferred"), "controls": self.status().to_dict()}

    def _count(self, user_id: str, state: str) -> int:
        p = self.store.PendingChange
        return int(p.select().where((p.user == user_id) & (p.state == state)).count())

    def versions(self, user_id: str) -> list[ProfileVersionInfo]:
        """Every profile version of a user, oldest first, with its snapshot: what ``rollback`` can return to."""
        v = self.store.ProfileVersion
        rows = v.select().where(v.user == _user(user_id)).order_by(v.version)
        return [ProfileVersionInfo(r.version, iso(r.at) or "", r.note, read_snapshot(r.snapshot)) for r in rows]

    def log(self, user_id: str, limit: int | None = None) -> list[LogEntry]:
        """The transparency log, oldest first (the last ``limit`` entries if given)."""
        u = self.store.UpdateLog
        query = u.select().where(u.user == _user(user_id)).order_by(u.id.desc())
        if limit is not None:
            if not isinstance(limit, int) or limit < 1:
                raise InputError(f"limit must be a positive number of entries, got {limit!r}")
            query = query.limit(limit)
        return [LogEntry(r.id, iso(r.at) or "", r.key, r.action, _loads(r.old), _loads(r.new), r.detail, r.source_module,
                         r.message_id, r.evidence, r.model_version) for r in reversed(list(query))]

    def pending(self, user_id: str, *, all_states: bool = False) -> list[PendingEntry]:
        """What waits (for a person, or for a rate window); with ``all_states``, also how earlier entries ended.
        An entry past its expiry shows as ``expired`` even before the writer has recorded it."""
        p = self.store.PendingChange
        query = p.user == _user(user_id)
        if not all_states:
            query &= p.state.in_(HELD)
        now = self.sync.now()
        out = []
        for r in p.select().where(query).order_by(p.id):
            payload = json.loads(r.payload)
            state = "expired" if r.state == "awaiting_approval" and r.expires is not None and (aware(r.expires) or now) <= now else r.state
            out.append(PendingEntry(r.id, r.user_id, r.kind, r.key, _loads(r.old), _loads(r.new), state, r.reason, iso(r.created) or "",
                                    iso(r.expires), iso(r.not_before), payload.get("message_id", ""), payload.get("evidence", "")))
        return out

    # -- deciding (queued, applied by the one writer) --------------------------------------------------------------
    def approve(self, user_id: str, change_id: int) -> Decision:
        """Apply a change that awaits approval (a new profile version). Idempotent: approving it again, or after a
        concurrent reject won, changes nothing and says how it ended."""
        return self._decide(user_id, change_id, "approve")

    def reject(self, user_id: str, change_id: int) -> Decision:
        """Drop a change that awaits approval (logged). Idempotent, like :meth:`approve`."""
        return self._decide(user_id, change_id, "reject")

    def _decide(self, user_id: str, change_id: int, action: Literal["approve", "reject"]) -> Decision:
        user_id = _user(user_id)
        if isinstance(change_id, bool) or not isinstance(change_id, int):
            raise InputError(f"a change id is a number (see: penny-slm profile pending), got {change_id!r}")
        p = self.store.PendingChange
        row = p.get_or_none((p.id == change_id) & (p.user == user_id))
        if row is None:
            raise InputError(f"user {user_id!r} has no change #{change_id}; see: penny-slm profile pending --user {user_id}")
        if row.state == "deferred":
            raise InputError(f"change #{change_id} is deferred by a rate limit, not waiting for approval; it applies by itself "
                             f"after {iso(row.not_before)}")
        if row.state != "awaiting_approval":
            return Decision(change_id, action, row.state, False, f"change #{change_id} was already {row.state}")
        if action == "approve" and self.safe_mode():
            raise InputError("learning is stopped by the kill switch; resume it first (penny-slm resume)")
        ack = self.sync.queue_update(SOURCE, {"kind": "decision", "user_id": user_id, "pending_id": change_id, "action": action})
        self.sync.process_queue()
        row = p.get_by_id(change_id)
        changed = row.decided_outbox_id == ack.outbox_id and row.state == ("approved" if action == "approve" else "rejected")
        if changed:
            detail = f"change #{change_id} {row.state}"
        elif row.state == "expired":
            detail = f"change #{change_id} expired at {iso(row.expires)} before it was decided"
        elif row.state == "awaiting_approval":
            detail = f"change #{change_id} still awaits approval: learning was stopped before it could apply"
        else:
            detail = f"change #{change_id} was already {row.state}"
        return Decision(change_id, action, row.state, changed, detail)

    def rollback(self, user_id: str, version: int) -> ProfileVersionInfo:
        """Restore version ``version`` as a new version (queued, so it lands between the updates around it); returns
        the new version. The rollback is logged; no earlier version or log row changes."""
        user_id = _user(user_id)
        if isinstance(version, bool) or not isinstance(version, int):
            raise InputError(f"a version is a number (see: penny-slm profile versions), got {version!r}")
        v = self.store.ProfileVersion
        if not v.select().where((v.user == user_id) & (v.version == version)).exists():
            known = [r.version for r in v.select(v.version).where(v.user == user_id).order_by(v.version)]
            raise InputError(f"user {user_id!r} has no profile version {version}; versions: "
                             f"{', '.join(map(str, known)) or 'none yet'}")
        ack = self.sync.queue_update(SOURCE, {"kind": "rollback", "user_id": user_id, "version": version})
        self.sync.process_queue()
        u = self.store.UpdateLog
        row = u.get_or_none(u.outbox_id == ack.outbox_id)
        if row is None or row.action != "rollback":
            raise InputError(f"the rollback of {user_id!r} to v{version} was not applied (see: penny-slm profile log)")
        made = v.get((v.user == user_id) & (v.version == _loads(row.new)))
        return ProfileVersionInfo(made.version, iso(made.at) or "", made.note, read_snapshot(made.snapshot))

    # -- export, delete, retention ---------------------------------------------------------------------------------
    def export(self, user_id: str) -> dict[str, Any]:
        """Everything stored about ``user_id``, JSON-ready: profile, slang, versions, transparency log, approval queue,
        alerts, module runs, queued updates, dead letters, the drift monitor's window and baseline. A user with nothing stored
        exports empty sections."""
        user_id = _user(user_id)
        s = self.store
        user = s.User.get_or_none(s.User.user_id == user_id)
        dims = [] if user is None else list(s.ProfileDimension.select().where(s.ProfileDimension.user == user).order_by(s.ProfileDimension.key))
        terms = [] if user is None else list(s.SlangTerm.select().where(s.SlangTerm.user == user).order_by(s.SlangTerm.term))
        alerts = [] if user is None else list(s.Alert.select().where(s.Alert.user == user).order_by(s.Alert.id))
        runs = s.ModuleRun.select().where(s.ModuleRun.user_id == user_id).order_by(s.ModuleRun.id)
        queued = s.Outbox.select().where(s.Outbox.user_id == user_id).order_by(s.Outbox.id)
        dead = s.DeadLetter.select().where(s.DeadLetter.user_id == user_id).order_by(s.DeadLetter.id)
        drift = [] if user is None else list(s.DriftTurn.select().where(s.DriftTurn.user == user).order_by(s.DriftTurn.id))
        drift_profile = None if user is None else s.DriftProfile.get_or_none(s.DriftProfile.user == user)
        return {
            "format": EXPORT_FORMAT, "user_id": user_id, "exported_at": iso(self.sync.now()),
            "user": None if user is None else {"created": iso(user.created)},
            "profile": {d.key: {"value": json.loads(d.value), "confidence": d.confidence, "evidence_count": d.evidence_count,
                                "updated": iso(d.updated)} for d in dims},
            "slang": [{"term": t.term, "gloss": t.gloss, "example": t.example, "count": t.count, "adopted": bool(t.adopted),
                       "first_seen": iso(t.first_seen)} for t in terms],
            "versions": [v.to_dict() for v in self.versions(user_id)],
            "log": [e.to_dict() for e in self.log(user_id)],
            "pending": [e.to_dict() for e in self.pending(user_id, all_states=True)],
            "alerts": [{"kind": a.kind, "severity": a.severity, "detail": a.detail, "at": iso(a.at),
                        "acknowledged": iso(a.acknowledged)} for a in alerts],
            "module_runs": [{"module": r.module, "status": r.status, "latency_ms": r.latency_ms, "model_version": r.model_version,
                             "at": iso(r.at)} for r in runs],
            "queued_updates": [{"id": q.id, "source": q.source, "update": _payload(q.payload), "applied": bool(q.applied),
                                "queued": iso(q.queued)} for q in queued],
            "dead_letters": [{"outbox_id": d.outbox_id, "source": d.source, "payload": d.payload, "reason": d.reason,
                              "at": iso(d.at)} for d in dead],
            "drift_turns": [{"turn": t.turn, "message": t.message, "response": t.response, "at": iso(t.at)} for t in drift],
            "drift_profile": None if drift_profile is None else {
                "baseline": json.loads(drift_profile.baseline) if drift_profile.baseline else None,
                "scorer": drift_profile.scorer, "checked": drift_profile.checked, "at": iso(drift_profile.at)},
        }

    def delete(self, user_id: str) -> DeleteReport:
        """Delete everything stored about ``user_id`` in one transaction, then scrub the freed space (SQLite: the
        deleted content is overwritten (``secure_delete``), the file vacuumed and its WAL truncated; PostgreSQL:
        ``VACUUM (FULL, ANALYZE)`` of every table deleted from). A turn for this user after the call starts a new
        profile."""
        user_id = _user(user_id)
        rows = self.sync.delete_user(user_id)
        vacuumed, truncated = self.store.scrub([t for t, n in rows.items() if n])
        return DeleteReport(user_id, rows, "sqlite" if self.store.is_sqlite else "postgresql", vacuumed, truncated,
                            SQLITE_NOTE if self.store.is_sqlite else POSTGRES_NOTE)

    def prune(self) -> dict[str, int]:
        """Apply ``learning.retention_days`` now (the sync writer also does this by itself, hourly); rows deleted per table."""
        return self.sync.prune()


SQLITE_NOTE = ("the database file and its WAL hold no copy of the deleted rows; copies made earlier (backups, "
               "file-system snapshots) and blocks the file system freed before are outside the database's reach")
POSTGRES_NOTE = ("no row is left and every table deleted from was rewritten (VACUUM FULL) and re-analysed; PostgreSQL "
                 "does not promise to scrub its write-ahead log (pg_wal keeps the old rows until those segments are "
                 "recycled), archived WAL, replicas or backups, or file-system blocks freed by the rewrite")


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _user(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise InputError(f"user_id must be a non-empty string, got {user_id!r}")
    return user_id


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) > 500:
        raise InputError(f"{name} must be a string of at most 500 characters")
    return value
