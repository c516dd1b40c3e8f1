"""Registry behaviour on small real files: versions, checksums, the regression gate, rollback."""

from pathlib import Path
from typing import Any

import pytest

from penny_slm.errors import ChecksumError, ModelNotFoundError, RegistryError
from penny_slm.pipeline.model_registry import ModelRegistry, sha256_file


def _stage(tmp_path: Path, content: bytes) -> Path:
    staging = tmp_path / f"stage-{content[:8].hex()}-{len(list(tmp_path.iterdir()))}"
    staging.mkdir()
    (staging / "model.onnx").write_bytes(content)
    return staging


def _fields(accuracy: float) -> dict[str, Any]:
    return {"name": "toy", "build_key": f"k{accuracy}", "data_hash": "d", "metrics": {"test": {"accuracy": accuracy}},
            "gate_metrics": ("accuracy",), "details": {}}


def test_register_activates_and_records_checksums(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    manifest = registry.register_version(_stage(tmp_path, b"weights-1"), _fields(0.9))
    assert manifest.version == "v1" and manifest.parent is None
    artifact = registry.load("toy")
    assert artifact.manifest.files["model.onnx"] == sha256_file(artifact.file("model.onnx"))


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.register_version(_stage(tmp_path, b"weights-1"), _fields(0.9))
    (tmp_path / "models" / "toy" / "v1" / "model.onnx").write_bytes(b"evil")
    with pytest.raises(ChecksumError, match="does not match its manifest"):
        registry.load("toy")


def test_regression_gate_keeps_but_does_not_activate(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.register_version(_stage(tmp_path, b"a"), _fields(0.95))
    with pytest.raises(RegistryError, match=r"fails the gate against v1 on accuracy 0\.9000 < 0\.9500"):
        registry.register_version(_stage(tmp_path, b"b"), _fields(0.90))
    assert registry.active_version("toy") == "v1"
    assert [m.version for m in registry.list_versions("toy")] == ["v1", "v2"]
    forced = registry.register_version(_stage(tmp_path, b"c"), _fields(0.90), force=True)
    assert registry.active_version("toy") == forced.version == "v3"
    assert forced.parent == "v1"


def test_a_remeasured_version_is_gated_on_its_new_numbers_and_keeps_its_files(tmp_path: Path) -> None:
    """After the test split changes, the active version is re-measured so the next build is compared fairly."""
    registry = ModelRegistry(tmp_path / "models")
    registry.register_version(_stage(tmp_path, b"a"), _fields(0.95))
    updated = registry.record_test_metrics("toy", "v1", {"accuracy": 0.85}, "split-2")
    assert updated.metrics["test_at_build"] == {"accuracy": 0.95} and updated.metrics["remeasured"]["test_hash"] == "split-2"
    assert registry.load("toy").manifest.metrics["test"] == {"accuracy": 0.85}  # checksums still verify
    assert registry.register_version(_stage(tmp_path, b"b"), _fields(0.90)).version == registry.active_version("toy")
    registry.record_test_metrics("toy", "v1", {"accuracy": 0.80}, "split-3")
    assert registry.list_versions("toy")[0].metrics["test_at_build"] == {"accuracy": 0.95}


def test_existing_build_finds_the_active_build_first_then_a_refused_one(tmp_path: Path) -> None:
    """A build the gate refused is not built again on the next ``models build`` (it would store a copy)."""
    registry = ModelRegistry(tmp_path / "models")
    assert registry.existing_build("toy", "k0.95") is None
    registry.register_version(_stage(tmp_path, b"a"), _fields(0.95))
    with pytest.raises(RegistryError):
        registry.register_version(_stage(tmp_path, b"b"), _fields(0.90))
    active, line = registry.existing_build("toy", "k0.95") or (None, "")
    assert active is not None and active.version == "v1" and "up to date" in line
    refused, line = registry.existing_build("toy", "k0.9") or (None, "")
    assert refused is not None and refused.version == "v2"
    assert "not active (v1 is)" in line and "models rollback toy v2" in line
    assert registry.existing_build("toy", "k0.5") is None


def test_a_gate_metric_the_active_version_never_measured_blocks_activation(tmp_path: Path) -> None:
    """How rewriter v4 slipped in: v2 predates ``pass_rate_reference_kept``, and the gate skipped it."""
    registry = ModelRegistry(tmp_path / "models")
    registry.register_version(_stage(tmp_path, b"a"), _fields(0.95))
    newer = {**_fields(0.96), "metrics": {"test": {"accuracy": 0.96, "f1": 0.5}}, "gate_metrics": ("accuracy", "f1")}
    with pytest.raises(RegistryError, match=r"on f1 \(not measured for v1\)\. .*models rollback toy v2"):
        registry.register_version(_stage(tmp_path, b"b"), newer)
    assert registry.active_version("toy") == "v1"
    registry.rollback("toy", "v2")
    assert registry.active_version("toy") == "v2"


def test_small_noise_passes_the_gate(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.register_version(_stage(tmp_path, b"a"), _fields(0.95))
    registry.register_version(_stage(tmp_path, b"b"), _fields(0.947))
    assert registry.active_version("toy") == "v2"


def test_rollback_and_unknown_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.register_version(_stage(tmp_path, b"a"), _fields(0.9))
    registry.register_version(_stage(tmp_path, b"b"), _fields(0.95))
    assert registry.rollback("toy", "v1").version == "v1"
    assert registry.active_version("toy") == "v1"
    with pytest.raises(RegistryError, match="known versions: v1, v2"):
        registry.rollback("toy", "v9")


def test_missing_model_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="penny-slm models build"):
        ModelRegistry(tmp_path).load("research")


@pytest.mark.issue(24)
def test_a_build_that_declares_no_gate_metrics_is_never_activated_by_itself(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    ungated = {**_fields(0.99), "gate_metrics": ()}
    with pytest.raises(RegistryError, match="declares no gate metrics.*models rollback toy v1"):
        registry.register_version(_stage(tmp_path, b"a"), ungated)
    assert registry.active_version("toy") is None and [m.version for m in registry.list_versions("toy")] == ["v1"]
    assert registry.register_version(_stage(tmp_path, b"b"), ungated, force=True).version == registry.active_version("toy") == "v2"
