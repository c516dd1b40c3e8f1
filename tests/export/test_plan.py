"""The ``models build`` plan (issue 23): an estimate per artifact before the build, a running total after each."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from penny_slm.cli import ALL_ARTIFACTS
from penny_slm.export.plan import BUILD_SECONDS, TABLE, BuildPlan, Estimate, clock, estimate
from penny_slm.pipeline.model_registry import ModelRegistry


def _register(registry: ModelRegistry, name: str, seconds: float | None) -> None:
    staging = Path(tempfile.mkdtemp(dir=registry.root))
    (staging / "model.onnx").write_bytes(b"weights")
    details = {BUILD_SECONDS: seconds} if seconds is not None else {}
    registry.register_version(staging, {"name": name, "build_key": "k", "data_hash": "", "metrics": {"test": {"accuracy": 1.0}},
                                        "gate_metrics": ("accuracy",), "details": details}, force=True)


def test_every_artifact_models_build_builds_has_a_table_row_with_its_source() -> None:
    assert set(TABLE) == set(ALL_ARTIFACTS)
    assert all(row.seconds > 0 and row.source for row in TABLE.values())


@pytest.mark.issue(23)
def test_estimates_come_from_the_last_recorded_build_else_the_table(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    assert estimate(registry, "tone") == Estimate("tone", TABLE["tone"].seconds, "table", None)
    _register(registry, "tone", None)  # built before build times were recorded: still the table
    assert estimate(registry, "tone").source == "table" and estimate(registry, "tone").active == "v1"
    _register(registry, "tone", 212.4)
    _register(registry, "tone", None)
    e = estimate(registry, "tone")
    assert (e.seconds, e.source, e.active) == (212.4, "your build of v2", "v3")


@pytest.mark.issue(23)
def test_the_plan_totals_what_is_missing_and_the_running_total_counts_down(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry, "research", 400.0)
    plan = BuildPlan.of(registry, ("research", "tone", "rewriter"))
    lines = plan.lines()
    missing = TABLE["tone"].seconds + TABLE["rewriter"].seconds
    assert lines[-1] == f"total ~{clock(missing)} for the 2 to build; up to ~{clock(400)} more if the built ones must be rebuilt"
    assert "research" in lines[1] and "v1 active" in lines[1] and "[your build of v1]" in lines[1]
    assert "tone" in lines[2] and "missing: build" in lines[2] and "[table]" in lines[2]
    now = [1000.0]
    monkeypatch.setattr("penny_slm.export.plan.time.perf_counter", lambda: now[0])
    plan.start()
    now[0] += 2
    assert plan.finished("research", 2, skipped=True) == (
        f"1/3 done: research up to date; elapsed 2s; about {clock(missing)} left")
    now[0] += 70
    assert plan.finished("tone", 70, skipped=False) == (
        f"2/3 done: tone built in 1m10s (estimated {clock(TABLE['tone'].seconds)}); elapsed 1m12s; "
        f"about {clock(TABLE['rewriter'].seconds)} left")


def test_clock() -> None:
    assert [clock(s) for s in (42, 425, 3725)] == ["42s", "7m05s", "1h02m"]


@pytest.mark.issue(23)
def test_quick_and_full_builds_are_estimated_apart(tmp_path: Path) -> None:
    """A quick (frozen-encoder) build and a full one are timed apart: neither estimates the other (their times differ
    and do not scale together: 43 s against 58 s from the packaged data, about the same with the sources cached)."""
    from penny_slm.export.plan import QUICK, QUICK_TABLE

    registry = ModelRegistry(tmp_path)
    assert estimate(registry, "research", quick=True).seconds == QUICK_TABLE["research"].seconds != TABLE["research"].seconds
    staging = Path(tempfile.mkdtemp(dir=registry.root))
    (staging / "model.onnx").write_bytes(b"weights")
    registry.register_version(staging, {"name": "research", "build_key": "q", "data_hash": "", "metrics": {"test": {"accuracy": 1.0}},
                                        "gate_metrics": ("accuracy",), "details": {BUILD_SECONDS: 81.0, QUICK: True}}, force=True)
    assert estimate(registry, "research") == Estimate("research", TABLE["research"].seconds, "table", "v1", replaces_quick=True)
    assert estimate(registry, "research", quick=True) == Estimate("research", 81.0, "your build of v1", "v1")
    plan = BuildPlan.of(registry, ("research", "tone"), quick=("research",))
    assert [e.seconds for e in plan.estimates] == [81.0, TABLE["tone"].seconds]
    full = BuildPlan.of(registry, ("research",))  # the quick head counts as to be built, not as up to date
    assert "quick v1 active: a full build replaces it" in full.lines()[1]
    assert full.lines()[-1] == f"total ~{clock(TABLE['research'].seconds)} for the 1 to build"


def test_quick_builds_are_encoder_heads_with_a_measured_table_row() -> None:
    from penny_slm.export.build import SPECS
    from penny_slm.export.plan import QUICK_TABLE

    assert set(QUICK_TABLE) <= set(SPECS) and all(row.seconds > 0 and row.source for row in QUICK_TABLE.values())


@pytest.mark.issue(18)
def test_an_artifact_whose_sources_are_not_cached_is_planned_as_skipped(tmp_path: Path) -> None:
    """A first build without ``data fetch`` must not promise twelve minutes for a head it will not build."""
    plan = BuildPlan.of(ModelRegistry(tmp_path), ("tone", "mood"), uncached=("mood",))
    mood = plan.estimates[1]
    assert (mood.seconds, mood.will_build) == (0.0, False) and "not cached" in mood.source
    assert plan.missing_seconds() == plan.estimates[0].seconds
    assert "mood" in plan.lines()[2] and "not built" in plan.lines()[2]
    plan.start()
    plan.finished("tone", 1.0, False)
    assert "mood not built" in plan.finished("mood", 0.0, True)


@pytest.mark.issue(23)
def test_a_head_trained_from_the_packaged_data_alone_gets_that_estimate(tmp_path: Path) -> None:
    """A fresh clone has no public source cached: its plan quotes the packaged-data times (research ~1 min, not 3)."""
    from penny_slm.export.plan import QUICK_TABLE

    registry = ModelRegistry(tmp_path)
    plan = BuildPlan.of(registry, ("research", "tone", "smollm2-135m"), packaged=("research", "tone"))
    assert [e.seconds for e in plan.estimates] == [TABLE["research"].packaged, TABLE["tone"].packaged, TABLE["smollm2-135m"].seconds]
    assert plan.estimates[0].source == "table, packaged data only"
    assert 0 < TABLE["research"].packaged < TABLE["research"].seconds
    quick = BuildPlan.of(registry, ("research",), quick=("research",), packaged=("research",))
    assert quick.estimates[0].seconds == QUICK_TABLE["research"].packaged


@pytest.mark.issue(23)
def test_models_build_plans_from_the_packaged_data_when_no_source_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command line, with an empty cache: the plan line for research quotes the packaged-data figure."""
    from penny_slm import cli

    monkeypatch.setenv("PENNY_SLM_CACHE", str(tmp_path / "empty-cache"))
    assert not cli._sources_cached("research") and not cli._sources_cached("guard")
    monkeypatch.setattr("penny_slm.export.build.build_artifact", _refuse)
    with pytest.raises(RuntimeError, match="before anything is built"):
        cli.main(["--models-dir", str(tmp_path / "models"), "models", "build", "--only", "research"])
    plan = capsys.readouterr().out
    assert f"~{clock(TABLE['research'].packaged):>6}  missing: build  [table, packaged data only]" in plan


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("the plan is printed before anything is built")
