"""``penny-slm eval drift``: replay streams turn by turn through a :class:`DriftMonitor`, as the layer would.

Detected = an alert at or after onset (the `eval drift` contract, docs/cli.md); a false alarm = any alert in a clean stream, or an alert before
onset in a drifting one. ``type_accuracy``: the first alert at or after onset names the stream's drift type.
Besides the contract's keys the report has ``per_type[..].typed_detection_rate`` (detected by an alert of the
right type) and ``per_variant`` (type × direction × shape, when the rows carry them).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from penny_slm.errors import InputError
from penny_slm.jsonl import jsonl_objects
from penny_slm.pipeline.modules.drift import DriftMonitor
from penny_slm.results import DRIFT_TYPES


def load_streams(path: Path) -> list[dict[str, Any]]:
    """Rows ``{stream_id, turns: [{user, response}], drift: null | {type, onset}}``; a bad row is an InputError naming
    its line."""
    rows = []
    for n, row in jsonl_objects(path, what="streams"):
        turns, drift = row.get("turns"), row.get("drift")
        ok = (isinstance(row.get("stream_id"), str) and isinstance(turns, list)
              and all(isinstance(t, dict) and isinstance(t.get("user"), str) and isinstance(t.get("response"), str) for t in turns))
        if drift is not None:
            ok = ok and isinstance(drift, dict) and drift.get("type") in DRIFT_TYPES and isinstance(drift.get("onset"), int) \
                and drift["onset"] >= 0
        if not ok:
            raise InputError(f"{path}:{n}: expected stream_id (str), turns [{{user, response}}], drift null or "
                             f"{{type in {list(DRIFT_TYPES)}, onset >= 0}}")
        rows.append(row)
    return rows


def replay(monitor: DriftMonitor, turns: list[dict[str, str]]) -> tuple[list[tuple[int, str]], list[float]]:
    """(alerts as (turn, drift type), per-check latency in ms) for one stream, one check per turn."""
    state = monitor.new_state()
    alerts, latencies = [], []
    for i, turn in enumerate(turns):
        start = time.perf_counter()
        report = monitor.observe(state, turn["user"], turn["response"])
        latencies.append((time.perf_counter() - start) * 1000)
        if report.should_alert:  # the strongest first: it is the one the first-alert type accuracy reads
            alerts += [(i, str(a.drift_type)) for a in sorted(state.alerts, key=lambda a: a is not report)]
    return alerts, latencies


def evaluate_drift(monitor: DriftMonitor, streams: list[dict[str, Any]]) -> dict[str, Any]:
    """Replay labelled streams through the monitor and report detection rate, delay after onset, alerts before onset, false
    alarms on clean streams, the first alert's type and latency per check."""
    replayed = [replay(monitor, row["turns"]) for row in streams]
    report = summarize(streams, [alerts for alerts, _ in replayed], [ms for _, lat in replayed for ms in lat])
    report["tone_head"] = monitor.tone_loaded
    return report


def summarize(streams: list[dict[str, Any]], alerts_per_stream: list[list[tuple[int, str]]],
              latencies: list[float]) -> dict[str, Any]:
    """The eval report from each stream's alerts ``(turn, drift type)``: shared by the monitor's eval and the
    detector comparison (``scripts/compare_drift_detectors.py``), so both count detections the same way."""
    delays: dict[str, list[int]] = defaultdict(list)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "detected": 0, "typed": 0, "early": 0})
    variants: dict[str, dict[str, Any]] = defaultdict(lambda: {"n": 0, "detected": 0, "delays": []})
    clean_n = clean_alarmed = clean_turns = clean_alerts = 0
    typed_first = typed_total = 0
    for row, alerts in zip(streams, alerts_per_stream, strict=True):
        drift = row.get("drift")
        if drift is None:
            clean_n += 1
            clean_turns += len(row["turns"])
            clean_alerts += len(alerts)
            clean_alarmed += bool(alerts)
            continue
        kind, onset = drift["type"], drift["onset"]
        c = counts[kind]
        c["n"] += 1
        c["early"] += any(i < onset for i, _ in alerts)
        after = [(i, t) for i, t in alerts if i >= onset]
        variant = "/".join(str(drift[k]) for k in ("type", "direction", "shape") if k in drift)
        variants[variant]["n"] += 1
        if after:
            c["detected"] += 1
            delays[kind].append(after[0][0] - onset)
            variants[variant]["detected"] += 1
            variants[variant]["delays"].append(after[0][0] - onset)
            typed_total += 1
            typed_first += after[0][1] == kind
        c["typed"] += any(t == kind for _, t in after)
    per_type = {}
    for kind, c in sorted(counts.items()):
        d = delays[kind]
        per_type[kind] = {"n": c["n"], "detection_rate": round(c["detected"] / c["n"], 4),
                          "typed_detection_rate": round(c["typed"] / c["n"], 4),
                          "median_delay": statistics.median(d) if d else None,
                          "p90_delay": float(np.percentile(d, 90)) if d else None,
                          "false_alarm_before_onset_rate": round(c["early"] / c["n"], 4)}
    ms = np.array(latencies or [0.0])
    return {
        "n_streams": len(streams),
        "per_type": per_type,
        "clean": {"n": clean_n, "false_alarm_rate": round(clean_alarmed / clean_n, 4) if clean_n else None,
                  "alerts_per_1000_turns": round(1000 * clean_alerts / clean_turns, 2) if clean_turns else None},
        "type_accuracy": round(typed_first / typed_total, 4) if typed_total else None,
        "latency_ms": {p: round(float(np.percentile(ms, q)), 3) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
        "per_variant": {v: {"n": x["n"], "detection_rate": round(x["detected"] / x["n"], 4),
                            "median_delay": statistics.median(x["delays"]) if x["delays"] else None}
                        for v, x in sorted(variants.items())},
    }


# -- calibration: thresholds from simulated clean streams ---------------------------------------------------------

def clean_scores(monitor: DriftMonitor, streams: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Every per-turn channel score the monitor computes on the clean streams (after their baseline turns)."""
    out: dict[str, list[float]] = defaultdict(list)
    for row in streams:
        if row.get("drift") is not None:
            continue
        state = monitor.new_state()
        for turn in row["turns"]:
            monitor.observe(state, turn["user"], turn["response"])
            for name, q in state.scores.items():
                if q and q[-1][0] == state.turns - 1:
                    out[name].append(q[-1][1])
    return {name: np.array(v) for name, v in out.items()}


def run_lengths(scores: np.ndarray, k: float, cap: float, h: float, *, n_sim: int = 2000, max_len: int = 20000,
                seed: int = 0) -> np.ndarray:
    """Turns to the first alarm of a CUSUM on ``n_sim`` simulated clean streams, each turn's score drawn (with
    replacement) from ``scores``; streams that never alarm count as ``max_len`` (so the mean is a lower bound)."""
    rng = np.random.default_rng(seed)
    x = np.minimum(scores, cap) - k
    s = np.zeros(n_sim)
    first = np.full(n_sim, max_len)
    alive = np.ones(n_sim, dtype=bool)
    for t in range(max_len):
        s = np.maximum(0.0, s + rng.choice(x, size=n_sim))
        hit = alive & (s >= h)
        first[hit] = t + 1
        alive &= ~hit
        if not alive.any():
            break
    return first


def calibrate(scores: np.ndarray, k: float, cap: float, target_arl: float, *, seed: int = 0) -> tuple[float, float]:
    """The smallest threshold ``h`` (to 0.05) whose simulated ARL0 reaches ``target_arl``, and that ARL0. ``h`` is
    never below ``cap``, so one turn alone (a single slip) cannot raise an alert from a quiet start."""
    lo, hi = cap, 20.0
    if run_lengths(scores, k, cap, lo + 0.05, max_len=int(4 * target_arl), seed=seed).mean() >= target_arl:
        hi = lo + 0.05
    while hi - lo > 0.05:
        mid = (lo + hi) / 2
        if run_lengths(scores, k, cap, mid, max_len=int(4 * target_arl), seed=seed).mean() >= target_arl:
            hi = mid
        else:
            lo = mid
    h = round(hi + 0.025, 2)
    return h, float(run_lengths(scores, k, cap, h, max_len=int(4 * target_arl), seed=seed + 1).mean())
