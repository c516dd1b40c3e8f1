"""The ``models build`` plan: an estimate per artifact before anything starts, and a running total as it goes.

Why: a first build on a 2-core machine takes most of an hour and used to say nothing about how much was left
(issue 23). Where an estimate comes from, in order:

1. the newest stored version of the artifact that recorded its own build time (``details.build_seconds``,
   written by every build since this plan exists): the user's own machine, the best guess;
2. ``TABLE``: one figure per artifact for a full-size build on the project's 2-core machine, each with where
   it comes from (measured on that machine with the public sources cached; docs/MEASUREMENTS.md).

An artifact that already has an active version is checked first and rebuilt only if its data or settings
changed; the plan counts it separately ("up to ... more if rebuilt").

A quick build (``models build --quick``: frozen-encoder heads for a first run) is estimated from earlier quick builds
and ``QUICK_TABLE``; a full build never from a quick one (their times differ: from the packaged data a quick
research head took 43 s against a full one's 58 s, with the sources cached about the same).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from penny_slm.pipeline.model_registry import ModelRegistry

BUILD_SECONDS = "build_seconds"
"""The manifest ``details`` key each build records its wall-clock seconds under."""
QUICK = "quick"
"""The manifest ``details`` key that marks a quick build (frozen encoder, see ``models build --quick``)."""


@dataclass(frozen=True, slots=True)
class TableRow:
    """A full-size build's seconds on the project's 2-core machine, and where the figure comes from. ``packaged``: its
    seconds when no public source is cached (a fresh clone builds from the packaged hand-written data alone); 0 when
    that is not measured or the same."""

    seconds: float
    source: str
    packaged: float = 0.0


TABLE: dict[str, TableRow] = {
    # Measured 2026-12-05 (issue 23) in a fresh clone at 032028c, one `models build` into an empty registry after `data
    # fetch`, the machine otherwise idle: 23 min 42 s in all, everything as shipped (docs/MEASUREMENTS.md, "Fourth
    # pass"); another 2-vCPU machine of the same kind took about 27 min the same day ("Third pass"). From the packaged
    # data alone (a fresh clone without `data fetch`) research, tone and attachment take a fraction of these.
    "research": TableRow(150.0, "measured 2026-12-05 in a fresh clone with the sources cached: 148.3 s (fine-tune "
                                "115.2 s, 10,384 rows x 2 epochs); 58 s from the packaged data alone in a fresh clone",
                         packaged=60.0),
    "tone": TableRow(220.0, "measured 2026-12-05 in a fresh clone with the sources cached: 215.6 s (fine-tune 162.7 s, "
                            "8,650 rows x 2 epochs; the default int8 preset refused by the parity gate, the FFN-output "
                            "preset kept); 40 s from the packaged data alone in a fresh clone (three epochs then)",
                     packaged=40.0),
    "tone-screen": TableRow(10.0, "measured 2026-12-05: 8.9 s with the sources cached (8,650 rows), 2 s without",
                            packaged=2.0),
    "mood": TableRow(185.0, "measured 2026-12-05 in a fresh clone: 180.6 s (fine-tune 121.5 s, 8,532 rows x 2 epochs at "
                            "64 tokens, with the dev scoring that picks the epoch; then int8 refused twice, fp32 "
                            "checked, and the evaluation of 4,903 dev rows and an 8,000-line XED sample on two "
                            "threads); not built without its sources"),
    "attachment": TableRow(210.0, "measured 2026-12-05 in a fresh clone with the sources cached: 210.0 s (fine-tune "
                                  "137.0 s, 4,908 rows x 3 epochs; scoring the 2,265 held-out Spiral-Bench replies "
                                  "57 s); 10 s from the packaged data alone in a fresh clone", packaged=10.0),
    "smollm2-135m": TableRow(60.0, "measured 2026-12-05: 56.4 s (the packaged GGUF exported to ONNX int8, no training)"),
    "rewriter": TableRow(600.0, "measured 2026-12-05 in a fresh clone: 595.5 s, 476.3 s of it the fine-tune (1,600 of "
                                "the 2,874 pairs, 200 steps, all 30 layers), then the ONNX export, the parity check and "
                                "the evaluation on 330 held-out pairs"),
}
QUICK_TABLE: dict[str, TableRow] = {
    "research": TableRow(185.0, "measured 2026-12-04 with the public sources cached (9,757 training rows): 184.6 s; "
                                "43 s from the packaged data alone in a fresh clone (2026-12-05)", packaged=45.0),
    "attachment": TableRow(235.0, "measured 2026-12-05 with the public sources cached (4,908 training rows): 232.8 s, of "
                                  "which training 31.3 s and scoring the 2,265 held-out Spiral-Bench replies ~2 min"),
}
"""The heads ``models build --quick`` builds on the frozen encoder (logistic regression, then the same export, gates
and evaluation). Not tone: its frozen head, measured on 2026-12-04, caught 2 % of the real-world cheerleading (recall
0.02 with the sources cached) and, built from the packaged data alone, trimmed plain explanatory sentences from the
demo's replies; its full build takes 107 s from the packaged data, so the first run builds it in full."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """One artifact of the plan. ``active``: its active version (None: missing, it will be built).
    ``replaces_quick``: the active version is a quick build and this is a full one, so it will be built too.
    ``skipped``: missing, but its training sources are not cached, so it is not built (nothing to wait for)."""

    name: str
    seconds: float
    source: str
    active: str | None
    replaces_quick: bool = False
    skipped: bool = False

    @property
    def will_build(self) -> bool:
        """Certain to be built (missing and not skipped, or a quick head that a full build replaces)."""
        return (self.active is None and not self.skipped) or self.replaces_quick


def estimate(registry: ModelRegistry, name: str, *, quick: bool = False, packaged: bool = False) -> Estimate:
    """``name``'s estimate: its own last recorded build time of the same kind (quick or full), else the table (its
    packaged-data figure with ``packaged``: none of ``name``'s public sources is cached)."""
    active = registry.active_version(name)
    versions = registry.list_versions(name)
    replaces_quick = not quick and any(m.version == active and m.details.get(QUICK) for m in versions)
    for manifest in reversed(versions):
        recorded = manifest.details.get(BUILD_SECONDS)
        if bool(manifest.details.get(QUICK)) == quick and isinstance(recorded, int | float) and recorded > 0:
            return Estimate(name, float(recorded), f"your build of {manifest.version}", active, replaces_quick)
    row = (QUICK_TABLE if quick else TABLE).get(name)
    if row is None:
        return Estimate(name, 0.0, "no estimate (not in the table, never built here)", active, replaces_quick)
    if packaged and row.packaged:
        return Estimate(name, row.packaged, "table, packaged data only", active, replaces_quick)
    return Estimate(name, row.seconds, "table", active, replaces_quick)


def clock(seconds: float) -> str:
    """``1h02m``, ``7m05s`` or ``42s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass
class BuildPlan:
    """The estimates for one ``models build`` run, and the running total as artifacts finish."""

    estimates: list[Estimate]
    started: float = 0.0
    done: int = 0

    @classmethod
    def of(cls, registry: ModelRegistry, names: tuple[str, ...], *, quick: tuple[str, ...] = (),
           uncached: tuple[str, ...] = (), packaged: tuple[str, ...] = ()) -> BuildPlan:
        """The plan for building ``names``; those in ``quick`` as quick (frozen-encoder) builds, those in
        ``uncached`` (missing, and their training sources are not cached) as skipped: nothing to wait for; those in
        ``packaged`` (no public source cached) from the packaged data alone."""
        return cls([Estimate(name, 0.0, "skipped: its sources are not cached", None, skipped=True) if name in uncached
                    else estimate(registry, name, quick=name in quick, packaged=name in packaged) for name in names])

    def missing_seconds(self, start: int = 0) -> float:
        """Estimated seconds for the artifacts from ``start`` on that will be built (missing, or a quick head)."""
        return sum(e.seconds for e in self.estimates[start:] if e.will_build)

    def rebuild_seconds(self, start: int = 0) -> float:
        """Estimated seconds for the artifacts from ``start`` on that are rebuilt only if data or settings changed."""
        return sum(e.seconds for e in self.estimates[start:] if not e.will_build)

    def lines(self) -> list[str]:
        """The plan printed before the build starts."""
        out = ["plan (estimates for this machine; 'table' = times measured on the project's 2-core machine):"]
        for e in self.estimates:
            state = ("not built" if e.skipped else "missing: build" if e.active is None
                     else f"quick {e.active} active: a full build replaces it"
                     if e.replaces_quick else f"{e.active} active: rebuilt only if data or settings changed")
            out.append(f"  {e.name:<13} ~{clock(e.seconds):>6}  {state}  [{e.source}]")
        total = f"total ~{clock(self.missing_seconds())} for the {sum(e.will_build for e in self.estimates)} to build"
        if self.rebuild_seconds():
            total += f"; up to ~{clock(self.rebuild_seconds())} more if the built ones must be rebuilt"
        return [*out, total]

    def start(self) -> None:
        """Start the clock for the running totals."""
        self.started = time.perf_counter()

    def finished(self, name: str, seconds: float, skipped: bool) -> str:
        """The running-total line after ``name`` finished (``skipped``: it was up to date)."""
        self.done += 1
        e = next(x for x in self.estimates if x.name == name)
        what = ("not built" if e.skipped else "up to date" if skipped
                else f"built in {clock(seconds)} (estimated {clock(e.seconds)})")
        left = self.missing_seconds(self.done)
        return (f"{self.done}/{len(self.estimates)} done: {name} {what}; elapsed {clock(time.perf_counter() - self.started)}"
                + (f"; about {clock(left)} left" if left else "; nothing missing left")
                + (f" (+ up to {clock(self.rebuild_seconds(self.done))} if rebuilt)" if self.rebuild_seconds(self.done) else ""))
