"""What the dashboard shows, read through the functions the CLI prints from, so the page and ``penny-slm profile ...``
never disagree: ``LearningControls`` (profile, versions, log, pending, slang, kill switch) and ``ModelRegistry``
(active versions, checksums). Only two reads are the dashboard's own, because no CLI command has them yet: module
run statistics (the ``modulerun`` table) and alerts (the ``alert`` table, read column by column so that columns a
later migration adds, such as a drift alert's examples and recommendation, show without a change here).

Acknowledging an alert is a control write (``sync.set_control``, setting ``alert_ack:<id>``): it needs no schema
change and leaves the alert row as the writer made it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from penny_slm.config import SLMConfig
from penny_slm.errors import InputError, PennySLMError
from penny_slm.pipeline.controls import LearningControls, iso
from penny_slm.pipeline.db import PersonalityDB
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.results import _ToDict

KNOWN_ARTIFACTS = ("research", "tone", "tone-screen")
"""The encoder artifacts the modules load (the generative ones come from ``slm_models``)."""
SERIES = ("formality_level", "technical_depth")
"""Numeric dimensions charted over the profile versions (0-1); ``mood`` is charted beside them as a category."""
MOOD = "mood"
RECENT_RUNS = 1000
LOG_LIMIT = 500
ALERT_LIMIT = 200
ACK_PREFIX = "alert_ack:"
OUTCOMES = ("ok", "fallback", "timeout", "error")


@dataclass(frozen=True, slots=True)
class ModelState(_ToDict):
    """One artifact as the layer would load it. ``checksum``: ok | mismatch (a file differs from its manifest or is
    missing) | not built; ``load_state``: ready (verified, loaded on first use by Penny's process) | blocked (the layer
    refuses to load it) | not built. ``provider``: the first configured execution provider onnxruntime offers here."""

    name: str
    active_version: str | None
    checksum: str
    load_state: str
    provider: str
    detail: str


@dataclass(frozen=True, slots=True)
class ModuleStats(_ToDict):
    """Outcomes and latency (ms, nearest-rank percentiles) of a module's last runs, over every user."""

    module: str
    runs: int
    outcomes: dict[str, int]
    p50: float
    p95: float
    p99: float
    last_at: str | None


class Checksums:
    """Verified checksums, kept while the artifact's files are unchanged (hashing a model on every poll costs seconds)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._seen: dict[str, tuple[tuple[Any, ...], str, str]] = {}

    def state(self, name: str, version: str) -> tuple[str, str]:
        """``("ok" | "mismatch", detail)`` for one stored version; its files are hashed again only when one changed."""
        folder = self.registry.root / name / version
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.is_file())
        cached = self._seen.get(name)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        try:
            self.registry.load(name, version)
            result = ("ok", f"{len(key) - 1} files match manifest.json")
        except PennySLMError as exc:
            result = ("mismatch", str(exc))
        self._seen[name] = (key, *result)
        return result


def provider(cfg: SLMConfig) -> str:
    """The execution provider a model would run on here: the first configured one onnxruntime offers, else the CPU."""
    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    return next((p for p in cfg.execution_providers() if p in available), "CPUExecutionProvider")


def model_states(cfg: SLMConfig, registry: ModelRegistry, checksums: Checksums) -> list[ModelState]:
    """One status row per known artifact: active version, checksum state, provider and whether the layer can load it."""
    slm = [str(e["artifact"]) for e in cfg.slm_models.values() if "artifact" in e]
    names = list(dict.fromkeys([*KNOWN_ARTIFACTS, *slm, *registry.names()]))
    runs_on = provider(cfg)
    out = []
    for name in names:
        version = registry.active_version(name)
        if version is None:
            out.append(ModelState(name, None, "not built", "not built", runs_on, "build it with: penny-slm models build"))
            continue
        checksum, detail = checksums.state(name, version)
        out.append(ModelState(name, version, checksum, "ready" if checksum == "ok" else "blocked", runs_on, detail))
    return out


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * q // 100))  # nearest rank
    return round(sorted_ms[int(rank) - 1], 2)


def module_stats(store: PersonalityDB, limit: int = RECENT_RUNS) -> list[ModuleStats]:
    """Outcome counts and latency percentiles per module over the most recent ``limit`` module runs."""
    m = store.ModuleRun
    rows = list(m.select(m.module, m.status, m.latency_ms, m.at).order_by(m.id.desc()).limit(limit))
    out = []
    for module in sorted({r.module for r in rows}):
        mine = [r for r in rows if r.module == module]
        latencies = sorted(r.latency_ms for r in mine)
        outcomes = {s: 0 for s in OUTCOMES}
        for r in mine:
            outcomes[r.status] = outcomes.get(r.status, 0) + 1
        out.append(ModuleStats(module, len(mine), outcomes, _percentile(latencies, 50), _percentile(latencies, 95),
                               _percentile(latencies, 99), iso(mine[0].at)))
    return out


def process_memory() -> dict[str, float]:
    """This dashboard process's memory (MB): resident now and its peak. Penny's own process is not visible from here.
    Linux's ``/proc`` when there is one (``ru_maxrss`` keeps the peak of the process that forked this one)."""
    found: dict[str, float] = {}
    status = Path(f"/proc/{os.getpid()}/status")
    for line in status.read_text().splitlines() if status.is_file() else ():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line[:5]] = int(line.split()[1]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    peak = found.get("VmHWM", maxrss)
    return {"rss_mb": round(found.get("VmRSS", peak), 1), "peak_rss_mb": round(peak, 1)}


def alerts(store: PersonalityDB, limit: int = ALERT_LIMIT) -> list[dict[str, Any]]:
    """The newest alerts, every column of the table; ``detail`` that is a JSON object is spread into the alert (its
    ``examples`` and ``recommendation``), and ``acknowledged`` says whether a person acknowledged it."""
    cursor = store.database.execute_sql(f"SELECT * FROM alert ORDER BY id DESC LIMIT {int(limit)}")  # type: ignore[no-untyped-call]
    columns = [c[0] for c in cursor.description]
    acks = _acks(store)
    out = []
    for values in cursor.fetchall():
        row = dict(zip(columns, values))
        row["at"] = iso(datetime.fromisoformat(row["at"]) if isinstance(row["at"], str) else row["at"])
        detail = _json_object(row.get("detail"))
        if detail is not None:  # a column the table has wins, unless it is empty
            row = {**row, **{k: v for k, v in detail.items() if not row.get(k) or k == "detail"}}
            row["detail"] = detail.get("detail", "")
        for key in ("examples", "recommendation"):
            if isinstance(row.get(key), str) and row[key].startswith("["):
                row[key] = _json_list(row[key])
        ack = acks.get(row["id"])
        row["acknowledged"] = bool(row.get("acknowledged")) or (ack is not None and ack.get("at") == str(row["at"]))
        out.append(row)
    return out


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_list(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _acks(store: PersonalityDB) -> dict[int, dict[str, Any]]:
    c = store.ControlState
    acks: dict[int, dict[str, Any]] = {}
    for row in c.select().where(c.setting.startswith(ACK_PREFIX)).order_by(c.id):
        value = json.loads(row.value)
        acks[int(row.setting[len(ACK_PREFIX):])] = value if isinstance(value, dict) else {}
    return acks


def acknowledge(store: PersonalityDB, controls: LearningControls, alert_id: int) -> dict[str, Any]:
    """Record that a person saw alert ``alert_id`` (matched on its id and time, so a reused id is not acknowledged)."""
    if isinstance(alert_id, bool) or not isinstance(alert_id, int):
        raise InputError(f"an alert id is a number, got {alert_id!r}")
    row = store.Alert.get_or_none(store.Alert.id == alert_id)
    if row is None:
        raise InputError(f"there is no alert #{alert_id}")
    at = iso(row.at)
    controls.sync.set_control(f"{ACK_PREFIX}{alert_id}", {"at": at, "kind": row.kind}, "acknowledged on the dashboard")
    return {"alert": alert_id, "acknowledged": True}


def users(store: PersonalityDB) -> list[str]:
    """Every user with a profile, newest first, for the page's user picker."""
    u = store.User
    return [r.user_id for r in u.select(u.user_id).order_by(u.created.desc(), u.user_id)]


def evolution(controls: LearningControls, user_id: str) -> dict[str, Any]:
    """The charted dimensions at every profile version (``profile versions``): one point per version."""
    points = []
    for v in controls.versions(user_id):
        dims = v.profile["dimensions"]
        points.append({"version": v.version, "at": v.at, "note": v.note,
                       **{k: dims.get(k) if isinstance(dims.get(k), int | float) else None for k in SERIES},
                       MOOD: dims.get(MOOD) if isinstance(dims.get(MOOD), str) else None})
    return {"series": [*SERIES, MOOD], "points": points}


def stamp(store: PersonalityDB, registry: ModelRegistry) -> str:
    """Changes whenever anything the page shows may have changed: the page polls this and refetches on change."""
    tables = ("updatelog", "modulerun", "alert", "controlstate", "pendingchange", "profileversion", "slangterm", "user")
    parts = []
    for table in tables:
        key = "user_id" if table == "user" else "id"
        row = store.database.execute_sql(f'SELECT count(*), max("{key}") FROM "{table}"').fetchone()  # type: ignore[no-untyped-call]
        parts.append(f"{row[0]}:{row[1]}")
    active = registry.root / "active.json"
    parts.append(str(active.stat().st_mtime_ns) if active.is_file() else "-")
    return "|".join(parts)


def state(cfg: SLMConfig, store: PersonalityDB, controls: LearningControls, registry: ModelRegistry, checksums: Checksums,
          user_id: str | None) -> dict[str, Any]:
    """Everything one poll of the page shows; ``user_id`` None: the most recent user (if any)."""
    known = users(store)
    user = user_id if user_id in known else (known[0] if known else None)
    out: dict[str, Any] = {
        "stamp": stamp(store, registry),
        "status": {"controls": controls.status().to_dict(), "models": [m.to_dict() for m in model_states(cfg, registry, checksums)],
                   "modules": [s.to_dict() for s in module_stats(store)], "memory": process_memory(),
                   "recent_runs": RECENT_RUNS},
        "alerts": alerts(store), "users": known, "user": user, "profile": None,
    }
    if user is not None:
        out["profile"] = {"show": controls.show(user), "evolution": evolution(controls, user),
                          "versions": [{"version": v.version, "at": v.at, "note": v.note} for v in controls.versions(user)],
                          "log": [e.to_dict() for e in controls.log(user, LOG_LIMIT)],
                          "pending": [e.to_dict() for e in controls.pending(user)],
                          "slang": controls.export(user)["slang"]}
    return out
