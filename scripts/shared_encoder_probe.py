"""Shared encoder probe (issue 18): should the mood head ride on the research classifier's encoder pass?

Two ways to get a message's mood before the main LLM:
- **separate** (what ships): the fine-tuned mood head, a second encoder pass beside the research classifier's;
- **shared**: one pass of the research classifier's fine-tuned encoder, whose mean-pooled vector (the one its two
  heads read) also feeds a logistic-regression mood head fitted on GoEmotions train. The copy of the research graph
  gets that vector as an extra output; nothing else changes.

Both are scored on GoEmotions dev (the build's dev part, which also picks the regression's C here) and on XED (held
out at the source level, used for nothing else), and timed per message on one thread over the packaged research test
messages. Needs a registry with ``research`` and ``mood`` built and the cached sources (penny-slm data fetch).

    python scripts/shared_encoder_probe.py --models-dir models --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from sklearn.linear_model import LogisticRegression

from penny_slm.pipeline.adapters.onnx_encoder import OnnxEncoder
from penny_slm.pipeline.bench import _summary_ms, _texts
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.results import MOODS
from penny_slm.training.datasets import data_dir
from penny_slm.training.evaluate_context import mood_block
from penny_slm.training.splits import mood_data

EMBEDDING = "embedding_logits"  # OnnxEncoder keys outputs by name without "_logits": ``logits["embedding"]``


def with_embedding_output(model_path: Path, out_path: Path, head_name: str = "research") -> None:
    """Copy of a head's graph that also returns the pooled vector its heads read (the input of ``head_name``'s MatMul or
    Gemm)."""
    model = onnx.load(str(model_path))
    graph = model.graph
    head = next(n for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.output[0].startswith(f"{head_name}_logits"))
    graph.node.append(onnx.helper.make_node("Identity", [head.input[0]], [EMBEDDING]))
    graph.output.append(onnx.helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, ["batch_size", None]))
    onnx.save(model, str(out_path))


def encode_all(encoder: OnnxEncoder, texts: list[str], key: str, batch: int = 32) -> np.ndarray:
    """``key`` output of every text, in batches of similar length (fewer padded tokens)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[np.ndarray] = [np.empty(0)] * len(texts)
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        for i, o in zip(chunk, encoder.encode([texts[i] for i in chunk])):
            out[i] = o.logits[key]
    return np.stack(out)


def per_message_ms(fn: Callable[[str], object], texts: list[str], rounds: int = 3) -> dict[str, float]:
    """One message at a time, after a warm-up of 10."""
    for text in texts[:10]:
        fn(text)
    samples = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            fn(text)
            samples.append(time.perf_counter() - start)
    return _summary_ms(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--json", action="store_true", help="the whole result, per-class figures included")
    args = ap.parse_args()
    registry = ModelRegistry(Path(args.models_dir))
    research, mood_artifact = registry.load("research"), registry.load("mood")  # checksums verified
    data = mood_data(data_dir())
    parts = {"goemotions_dev": data.dev, "xed": data.real_test}
    with tempfile.TemporaryDirectory() as tmp:
        shared_path = Path(tmp) / "research_with_embedding.onnx"
        with_embedding_output(research.file("model.onnx"), shared_path)
        shared = OnnxEncoder(shared_path, research.file("tokenizer.json"), intra_op_threads=2)
        mood = OnnxEncoder(mood_artifact.file("model.onnx"), mood_artifact.file("tokenizer.json"), intra_op_threads=2,
                           max_tokens=64)
        shared.load()
        mood.load()
        start = time.perf_counter()
        x_train = encode_all(shared, [e.text for e in data.train], "embedding")
        x_parts = {name: encode_all(shared, [e.text for e in rows], "embedding") for name, rows in parts.items()}
        embed_s = time.perf_counter() - start
        y_train = [e.labels["mood"] for e in data.train]
        fits = {}
        for c in (0.01, 0.03, 0.1, 0.3, 1.0, 10.0):  # C chosen on GoEmotions dev, never on XED
            clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x_train, y_train)
            gold = [MOODS[e.labels["mood"]] for e in data.dev]
            fits[c] = (mood_block(gold, [MOODS[i] for i in clf.predict(x_parts["goemotions_dev"])])["macro_f1"], clf)
        best_c = max(fits, key=lambda c: fits[c][0])
        clf = fits[best_c][1]
        result: dict[str, Any] = {"train_rows": len(data.train), "chosen_C": best_c,
                        "dev_macro_f1_by_C": {str(c): f for c, (f, _) in fits.items()}, "embed_seconds": round(embed_s, 1)}
        for name, rows in parts.items():
            gold = [MOODS[e.labels["mood"]] for e in rows]
            separate = encode_all(mood, [e.text for e in rows], "mood").argmax(axis=1)
            result[name] = {"separate_head": mood_block(gold, [MOODS[i] for i in separate]),
                            "shared_pass": mood_block(gold, [MOODS[i] for i in clf.predict(x_parts[name])])}
        for encoder in (shared, mood):
            encoder.intra_op_threads = 1
            encoder.load()
        texts = _texts()
        result["latency_ms_one_thread"] = {
            "research_pass_with_embedding": per_message_ms(lambda t: shared.encode([t]), texts),
            "shared_pass_and_mood_regression": per_message_ms(
                lambda t: clf.predict_proba(shared.encode([t])[0].logits["embedding"][None, :]), texts),
            "research_pass_then_mood_pass": per_message_ms(lambda t: (shared.encode([t]), mood.encode([t])), texts),
            "messages": len(texts)}
    if not args.json:  # the short form: no per-class tables
        for name in parts:
            for way in ("separate_head", "shared_pass"):
                del result[name][way]["per_class"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
