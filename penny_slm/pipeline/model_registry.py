"""Versioned artifacts on disk: ``models/<name>/<version>/{model.onnx, tokenizer.json, manifest.json}``.

``models/active.json`` says which version of each name is live and keeps the activation history.
Loading verifies every file's sha256 against the manifest. A new version becomes active only if it
declares gate metrics and does not regress the active one's (unless forced); ``rollback`` moves the
pointer back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from penny_slm.errors import ChecksumError, ModelNotFoundError, RegistryError

GATE_TOLERANCE = 0.005
"""A new version may score this much lower on a gate metric (noise between seeds) and still pass."""


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks (artifacts can be hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a stored version is: its files with their sha256, the build key and data hash, metrics and gate, parent."""
    name: str
    version: str
    created: str
    parent: str | None
    files: dict[str, str]  # file name -> sha256
    build_key: str  # hash of training data + settings: equal keys mean "already built"
    data_hash: str
    metrics: dict[str, Any]
    gate_metrics: tuple[str, ...]  # keys in metrics["test"] that must not regress (higher is better)
    details: dict[str, Any] = field(default_factory=dict)  # settings, heads, temperature, quantization, parity

    def to_json(self) -> str:
        """The manifest as ``manifest.json`` stores it."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        """Read a ``manifest.json``."""
        data = json.loads(path.read_text(encoding="utf-8"))
        data["gate_metrics"] = tuple(data["gate_metrics"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified, loadable version: its folder and manifest."""

    path: Path
    manifest: Manifest

    def file(self, name: str) -> Path:
        """The path of one file of this verified version."""
        return self.path / name


def _write_atomic(path: Path, text: str) -> None:
    """Write-then-rename so a crash never leaves a half-written pointer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ModelRegistry:
    """The versioned artifacts under ``root`` (see the module docstring): load with checksums, register, activate, roll back."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- pointer ---------------------------------------------------------------------------
    def _active(self) -> dict[str, Any]:
        path = self.root / "active.json"
        if not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict)
        return data

    def _set_active(self, name: str, version: str, reason: str) -> None:
        active = self._active()
        entry = active.setdefault(name, {"version": None, "history": []})
        entry["version"] = version
        entry["history"].append({"version": version, "at": datetime.now(UTC).isoformat(timespec="seconds"), "reason": reason})
        _write_atomic(self.root / "active.json", json.dumps(active, indent=2, sort_keys=True))

    # -- reads -----------------------------------------------------------------------------
    def list_versions(self, name: str) -> list[Manifest]:
        """Every stored version of ``name``, oldest first."""
        folder = self.root / name
        manifests = [Manifest.from_file(p) for p in folder.glob("*/manifest.json")] if folder.is_dir() else []
        return sorted(manifests, key=lambda m: (m.created, m.version))

    def names(self) -> list[str]:
        """Every artifact name with at least one stored version."""
        return sorted({p.parent.parent.name for p in self.root.glob("*/*/manifest.json")})

    def active_version(self, name: str) -> str | None:
        """The active version of ``name``, or None if none is active."""
        version = self._active().get(name, {}).get("version")
        return str(version) if version else None

    def existing_build(self, name: str, build_key: str) -> tuple[Manifest, str] | None:
        """The version already built from ``build_key`` (the active one first, else the newest stored one, which
        the gate refused) and a line saying so. Building it again would only store a copy."""
        active = self.active_version(name)
        built = [m for m in self.list_versions(name) if m.build_key == build_key]
        if not built:
            return None
        for manifest in built:
            if manifest.version == active:
                return manifest, f"{name} {active} is up to date (same data and settings)"
        manifest = built[-1]
        return manifest, (
            f"{name} {manifest.version} was already built from this data and settings but is not active ({active} is); "
            f"compare with penny-slm eval, activate it with penny-slm models rollback {name} {manifest.version}, "
            "or rebuild with --force"
        )

    def get_active_version(self, name: str) -> Manifest:
        """The active version's manifest; ``ModelNotFoundError`` with the build command if there is none."""
        version = self.active_version(name)
        if version is None:
            raise ModelNotFoundError(
                f"no active '{name}' model in {self.root}; build it with: penny-slm models build"
            )
        return Manifest.from_file(self.root / name / version / "manifest.json")

    def load(self, name: str, version: str | None = None) -> Artifact:
        """The active (or given) version, after checking every file against its sha256."""
        manifest = self.get_active_version(name) if version is None else self._manifest(name, version)
        folder = self.root / name / manifest.version
        for file_name, expected in manifest.files.items():
            path = folder / file_name
            if not path.is_file():
                raise ChecksumError(f"{path} is missing; rebuild with: penny-slm models build --force")
            actual = sha256_file(path)
            if actual != expected:
                raise ChecksumError(
                    f"{path} does not match its manifest (sha256 {actual[:12]}… != {expected[:12]}…); "
                    "the file was changed or corrupted; rebuild with: penny-slm models build --force"
                )
        return Artifact(folder, manifest)

    def _manifest(self, name: str, version: str) -> Manifest:
        path = self.root / name / version / "manifest.json"
        if not path.is_file():
            known = ", ".join(m.version for m in self.list_versions(name)) or "none"
            raise RegistryError(f"unknown version '{version}' of '{name}'; known versions: {known}")
        return Manifest.from_file(path)

    # -- writes ----------------------------------------------------------------------------
    def next_version(self, name: str) -> str:
        """The name the next stored version of ``name`` gets (``v1``, ``v2``, ...)."""
        numbers = [int(m.version[1:]) for m in self.list_versions(name) if m.version[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    def register_version(self, staging: Path, manifest_fields: dict[str, Any], *, force: bool = False) -> Manifest:
        """Move a staged folder into place as the next version, fill checksums, and activate it if the gate allows.

        The version is always kept (for comparison and manual activation); only activation is gated.
        """
        name = manifest_fields["name"]
        version = self.next_version(name)
        parent = self.active_version(name)
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file() and p.name != "manifest.json"}
        manifest = Manifest(
            version=version, parent=parent, files=files,
            created=datetime.now(UTC).isoformat(timespec="seconds"), **manifest_fields,
        )
        (staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        target = self.root / name / version
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), target)
        if not manifest.gate_metrics and not force:
            raise RegistryError(
                f"{name} {version} was stored but not activated: it declares no gate metrics, so nothing shows it "
                f"works; to activate it anyway: penny-slm models rollback {name} {version}")
        if parent is not None and not force:
            regressions = self.regressions(self.get_active_version(name), manifest)
            if regressions:
                raise RegistryError(
                    f"{name} {version} was stored but not activated: it fails the gate against {parent} on "
                    + "; ".join(regressions) + f". Compare with penny-slm eval; to activate it anyway: penny-slm models "
                    f"rollback {name} {version} (it points at any stored version)"
                )
        self._set_active(name, version, "forced" if force else "built")
        return manifest

    @staticmethod
    def regressions(old: Manifest, new: Manifest) -> list[str]:
        """Gate metrics the new version is worse on, and those the active one never measured: a metric
        added after it was built cannot be compared, and is not waved through."""
        old_test, new_test = old.metrics.get("test", {}), new.metrics.get("test", {})
        return [
            f"{key} {new_test[key]:.4f} < {old_test[key]:.4f}" if key in old_test
            else f"{key} (not measured for {old.version})"
            for key in new.gate_metrics
            if key in new_test and (key not in old_test or new_test[key] < old_test[key] - GATE_TOLERANCE)
        ]

    def record_test_metrics(self, name: str, version: str, test: dict[str, Any], test_hash: str) -> Manifest:
        """Replace a stored version's test metrics with a re-measurement (after the test split or the metrics
        changed), so the gate compares the next build with numbers from the same split. The build-time
        metrics are kept under ``test_at_build``; the model files are not touched."""
        manifest = self._manifest(name, version)
        metrics = {**manifest.metrics, "test": test, "remeasured": {
            "at": datetime.now(UTC).isoformat(timespec="seconds"), "test_hash": test_hash}}
        metrics.setdefault("test_at_build", manifest.metrics.get("test", {}))
        updated = replace(manifest, metrics=metrics)
        _write_atomic(self.root / name / version / "manifest.json", updated.to_json())
        return updated

    def rollback(self, name: str, to_version: str) -> Manifest:
        """Point ``name`` at an existing, checksum-valid version."""
        artifact = self.load(name, to_version)
        self._set_active(name, to_version, "rollback")
        return artifact.manifest
