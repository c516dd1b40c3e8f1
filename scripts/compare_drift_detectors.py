"""Compare river's change detectors with the drift monitor's own CUSUM on the same per-turn scores (issue 19).

The monitor's per-turn channel scores (``tone_up``, ``tone_down``, ``repetition``, ``attachment``) are computed once
per stream; each detector then runs on them per channel with the monitor's episode rule (after an alarm a channel is
quiet until its score has stayed below ``k`` for ``cooldown_turns`` turns, then starts afresh) and is scored by the
same ``summarize`` as ``penny-slm eval drift``. Every detector is calibrated the same way as the CUSUM: its one
threshold parameter is set on simulated clean streams (bootstrapped clean scores of drift_dev.jsonl) so that the mean
run length to a false alarm (ARL0) reaches the target (2,000 clean turns, the CUSUM's). Results: docs/MEASUREMENTS.md,
"Behaviour drift monitor (issue 19)".

river is not a dependency of penny-slm; install it for this script: ``pip install river==0.26.1``.
Usage: python scripts/compare_drift_detectors.py [--sims 100000] [--target 2000] [--kinds cusum,adwin,...] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from penny_slm.pipeline.modules.drift import CHANNELS, Channel, DriftMonitor
from penny_slm.training.drift_eval import load_streams, summarize

DATA = Path(__file__).parents[1] / "penny_slm" / "training" / "data"


class Detector(Protocol):
    def update(self, x: float) -> bool: ...


@dataclass
class Cusum:
    """The monitor's own detector (``drift.DriftMonitor.observe``): ``S = max(0, S + min(x, cap) - k)``, alarm at h."""

    k: float
    cap: float
    h: float
    s: float = 0.0

    def update(self, x: float) -> bool:
        self.s = max(0.0, self.s + min(x, self.cap) - self.k)
        return self.s >= self.h


class River:
    """A river detector on the capped score; ``up_only``: count an alarm only when the mean rose (ADWIN, KSWIN are
    two-sided, and a drop in a channel's score is not drift of its type)."""

    def __init__(self, detector: Any, cap: float, up_only: bool) -> None:
        self.detector, self.cap, self.up_only = detector, cap, up_only
        self.seen: list[float] = []

    def update(self, x: float) -> bool:
        x = min(x, self.cap)
        self.seen.append(x)
        self.detector.update(x)
        if not self.detector.drift_detected:
            return False
        if not self.up_only:
            return True
        recent = self.seen[-4:]  # the last few against everything before them
        return len(self.seen) > len(recent) and statistics.fmean(recent) > statistics.fmean(self.seen[:-len(recent)])


def make(kind: str, channel: Channel, param: float) -> Callable[[], Detector]:
    """A factory of fresh detectors of ``kind`` for ``channel`` with its calibrated threshold parameter ``param``."""
    from river import drift

    if kind == "cusum":
        return lambda: Cusum(channel.k, channel.cap, param)
    if kind == "page_hinkley":  # one-sided (mode="up"), no forgetting, active after the first 3 scored turns
        return lambda: River(drift.PageHinkley(min_instances=3, delta=channel.k / 2, threshold=param, alpha=1.0,
                                               mode="up"), channel.cap, up_only=False)
    if kind == "adwin":  # checks on every turn (clock=1); the smallest sub-windows river allows
        return lambda: River(drift.ADWIN(delta=param, clock=1, grace_period=4, min_window_length=2), channel.cap,
                             up_only=True)
    if kind == "kswin":  # window = the monitor's 12-turn window, the last 4 turns against a sample of the rest
        return lambda: River(drift.KSWIN(alpha=param, window_size=12, stat_size=4, seed=0), channel.cap, up_only=True)
    raise ValueError(kind)


KSWIN_ALPHA = 0.03
"""KSWIN is not calibrated: its window must fit the 18-30 turn streams (here 12 turns, the last 4 tested against 4
sampled from the rest), and a two-sample KS test of 4 against 4 values cannot reach a p-value below 2/C(8, 4) = 0.029,
so an alpha under that never fires. It runs at the smallest alpha that can fire; its ARL0 there is measured."""
SEARCH: dict[str, tuple[float, float, bool]] = {
    # kind -> (low, high, log scale); a larger parameter is stricter for cusum / page_hinkley, looser for adwin / kswin
    "cusum": (0.5, 20.0, False),
    "page_hinkley": (0.5, 40.0, False),
    "adwin": (1e-12, 0.5, True),
}
STRICTER_WHEN_LARGER = {"cusum": True, "page_hinkley": True, "adwin": False}


def episodes(factory: Callable[[], Detector], scores: list[float | None], k: float, cooldown: int) -> list[int]:
    """Turns at which the detector raises an alert, with the monitor's episode and cooldown rule."""
    det, in_episode, calm, fired = factory(), False, 0, []
    for i, x in enumerate(scores):
        if x is None:
            continue
        if in_episode:
            calm = calm + 1 if x < k else 0
            if calm >= cooldown:
                det, in_episode = factory(), False
            continue
        if det.update(x):
            in_episode, calm = True, 0
            fired.append(i)
    return fired


def arl0(factory: Callable[[], Detector], pool: np.ndarray, turns: int, seed: int = 0) -> float:
    """Mean run length to a false alarm on one long simulated clean stream (``turns`` draws from ``pool``): the
    detector starts afresh after each alarm, so the stream is a sequence of independent runs and the mean run length is
    turns / alarms (``turns`` when it never alarms: a lower bound)."""
    det, alarms = factory(), 0
    for x in np.random.default_rng(seed).choice(pool, size=turns):
        if det.update(float(x)):
            det, alarms = factory(), alarms + 1
    return turns / max(1, alarms)


def calibrate(kind: str, channel: Channel, pool: np.ndarray, sims: int, target: float) -> tuple[float, float]:
    """The least strict parameter whose simulated ARL0 (over ``sims`` clean turns) reaches ``target`` (bisection, 10
    steps), and the ARL0 measured again on fresh draws."""
    lo, hi, log = SEARCH[kind]
    if kind == "cusum":  # as the packaged calibration: h >= cap, so one turn alone cannot raise an alert
        lo = channel.cap
    strict_up = STRICTER_WHEN_LARGER[kind]
    strict, loose = (hi, lo) if strict_up else (lo, hi)
    for _ in range(10):
        mid = math.sqrt(strict * loose) if log else (strict + loose) / 2
        if arl0(make(kind, channel, mid), pool, sims) >= target:
            strict = mid
        else:
            loose = mid
    return strict, arl0(make(kind, channel, strict), pool, sims, seed=1)


def channel_scores(monitor: DriftMonitor, streams: list[dict[str, Any]]) -> list[dict[str, list[float | None]]]:
    """Per stream, per channel: the monitor's score of every turn (None while the baseline is being built)."""
    out = []
    for row in streams:
        state = monitor.new_state()
        per: dict[str, list[float | None]] = {c.name: [] for c in CHANNELS}
        for turn in row["turns"]:
            monitor.observe(state, turn["user"], turn["response"])
            for name, q in state.scores.items():
                per[name].append(q[-1][1] if q and q[-1][0] == state.turns - 1 else None)
        out.append(per)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=100_000, help="simulated clean turns per ARL0 estimate (KSWIN: a tenth)")
    ap.add_argument("--target", type=float, default=2000.0)
    ap.add_argument("--kinds", default="cusum_packaged,cusum,page_hinkley,adwin,kswin")
    ap.add_argument("--out")
    args = ap.parse_args()
    monitor = DriftMonitor(use_tone_head=False, use_attachment_head=False)
    dev, test = load_streams(DATA / "drift_dev.jsonl"), load_streams(DATA / "drift_test.jsonl")
    dev_scores, test_scores = channel_scores(monitor, dev), channel_scores(monitor, test)
    pools = {c.name: np.array([x for row, per in zip(dev, dev_scores, strict=True) if row["drift"] is None
                               for x in per[c.name] if x is not None]) for c in CHANNELS}
    result: dict[str, Any] = {"target_arl0": args.target, "sims": args.sims}
    for kind in args.kinds.split(","):
        start = time.perf_counter()
        if kind == "cusum_packaged":  # the monitor's own thresholds (CHANNELS): reproduces `penny-slm eval drift`
            params = {c.name: (c.h, arl0(make("cusum", c, c.h), pools[c.name], args.sims, seed=1)) for c in CHANNELS}
        elif kind == "kswin":  # not calibrated: see KSWIN_ALPHA
            params = {c.name: (KSWIN_ALPHA, arl0(make(kind, c, KSWIN_ALPHA), pools[c.name], args.sims // 10, seed=1))
                      for c in CHANNELS}
        else:
            params = {c.name: calibrate(kind, c, pools[c.name], args.sims, args.target) for c in CHANNELS}
        factories = {c.name: make("cusum" if kind == "cusum_packaged" else kind, c, params[c.name][0]) for c in CHANNELS}
        block: dict[str, Any] = {"params": {n: {"param": round(p, 12), "arl0": round(a)} for n, (p, a) in params.items()},
                                 "calibration_s": round(time.perf_counter() - start, 1)}
        for part, streams, scores in (("dev", dev, dev_scores), ("test", test, test_scores)):
            alerts, timings = [], []
            for per in scores:
                t0 = time.perf_counter()
                fired = sorted((i, c.drift_type, c.name) for c in CHANNELS
                               for i in episodes(factories[c.name], per[c.name], c.k, monitor.cooldown_turns))
                timings.append((time.perf_counter() - t0) * 1000 / max(1, len(per["tone_up"])))
                alerts.append([(i, str(kind_)) for i, kind_, _ in fired])
            report = summarize(streams, alerts, timings)
            report["latency_ms"] = {"detectors_per_turn_p50": round(statistics.median(timings), 4)}
            report.pop("per_variant")
            block[part] = report
        result[kind] = block
        print(json.dumps({kind: block}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
