"""Which int8 preset keeps a built mood head's labels: each preset applied to the artifact's fp32 graph, labels compared
with the fp32 graph on GoEmotions dev texts (never XED), on clear decisions (top-two margin >= 0.1, as the parity gate
counts them) and on all. A probe for docs/MEASUREMENTS.md, not part of the build.

    python scripts/mood_int8_probe.py models/mood/v1 goemotions_dev.jsonl --n 1500 [--batch 1] [--presets default]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from penny_slm.export.quantize import DEFAULT_PRESET, QuantizationPreset, quantize_int8
from penny_slm.pipeline.adapters.onnx_encoder import OnnxEncoder

BASE = DEFAULT_PRESET.keep_fp32_suffixes
VARIANTS = {
    "default": BASE,
    "+ffn_out": (*BASE, "output/dense/MatMul"),  # also matches attention/output/dense
    "+ffn_all": (*BASE, "output/dense/MatMul", "intermediate/dense/MatMul"),
    "+last_layer": (*BASE, *(f"layer.5/{x}" for x in ("attention/output/dense/MatMul", "intermediate/dense/MatMul",
                                                       "output/dense/MatMul", "attention/self/query/MatMul",
                                                       "attention/self/key/MatMul", "attention/self/value/MatMul"))),
}


def logits(model: Path, tokenizer: Path, texts: list[str], batch: int = 32) -> np.ndarray:
    """The mood logits of ``texts`` from one graph, ``batch`` texts per run (dynamic int8 scales depend on the batch:
    Penny runs one message per call)."""
    enc = OnnxEncoder(model, tokenizer, providers=("CPUExecutionProvider",), intra_op_threads=2, max_tokens=64)
    enc.load()
    return np.stack([o.logits["mood"] for i in range(0, len(texts), batch) for o in enc.encode(texts[i:i + batch])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifact", help="a mood version folder whose model.onnx is the fp32 graph")
    ap.add_argument("data", help='JSONL of {"text"} (GoEmotions dev)')
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32, help="texts per run of the int8 graph (1: as Penny runs it)")
    ap.add_argument("--presets", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    fp32, tokenizer = Path(args.artifact) / "model.onnx", Path(args.artifact) / "tokenizer.json"
    texts = [json.loads(line)["text"] for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()][:args.n]
    ref = logits(fp32, tokenizer, texts)
    p = np.exp(ref - ref.max(1, keepdims=True))
    top2 = np.sort(p / p.sum(1, keepdims=True), 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] >= 0.1
    for name in args.presets:
        suffixes = VARIANTS[name]
        work = Path(tempfile.mkdtemp())
        out = work / "int8.onnx"
        info = quantize_int8(fp32, out, QuantizationPreset(name, False, True, suffixes, ("Gemm",)))
        same = logits(out, tokenizer, texts, args.batch).argmax(1) == ref.argmax(1)
        print(json.dumps({"preset": name, "batch": args.batch, "fp32_nodes": info["fp32_nodes"], "clear": round(float(same[clear].mean()), 4),
                          "all": round(float(same.mean()), 4), "mb": round(out.stat().st_size / 1e6, 1)}), flush=True)
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
