"""Dynamic int8 quantization through a named preset, recorded in the manifest."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoQuantizationConfig


@dataclass(frozen=True, slots=True)
class QuantizationPreset:
    """One int8 quantization recipe: static or dynamic, per channel or per tensor, and which nodes stay fp32."""
    name: str
    is_static: bool
    per_channel: bool
    keep_fp32_suffixes: tuple[str, ...] = ()  # MatMul nodes whose name ends with one of these stay fp32
    keep_fp32_ops: tuple[str, ...] = ()  # every node of these op types stays fp32
    keep_fp32_pattern: str = ""  # MatMul nodes whose name matches this regular expression stay fp32

    def as_dict(self) -> dict[str, Any]:
        """The preset as JSON, for the manifest."""
        return asdict(self)


PRESETS = {
    # Per-channel weights: per-tensor int8 moved 3.4% of category labels on a frozen-encoder build
    # (agreement 96.6% -> 98.7% per-channel, research head 99.3% -> 99.7%), same 23 MB. See docs/MEASUREMENTS.md.
    # Attention scores (Q·Kᵀ, attn·V) multiply two activations; int8 on both sides was the largest
    # remaining source of flipped labels (research agreement 99.56% -> 99.71%, ~6% slower per query).
    "avx512_vnni_dynamic_per_channel": QuantizationPreset(
        "avx512_vnni_dynamic_per_channel", is_static=False, per_channel=True,
        keep_fp32_suffixes=("attention/self/MatMul", "attention/self/MatMul_1"),
        keep_fp32_ops=("Gemm",),  # the classification heads: 384 x a few weights, the decision itself
    ),
}
DEFAULT_PRESET = PRESETS["avx512_vnni_dynamic_per_channel"]
# The second try when the default flips too many decisions: each layer's FFN output projection (1536 -> 384, fed by
# GELU activations with large outliers) stays fp32 as well. Measured on the tone head of a build with every source
# cached, against its fp32 graph on 2,535 dev and test texts, one thread: the default agreed on 0.9948 of clear
# decisions (gate 0.995), 4.9 ms a reply; this preset 0.9976 (all rows 0.9929), 33.6 MB, 6.1 ms; fp32 8.9 ms.
PRESETS["ffn_output_fp32"] = QuantizationPreset(
    "ffn_output_fp32", is_static=False, per_channel=True, keep_fp32_suffixes=DEFAULT_PRESET.keep_fp32_suffixes,
    keep_fp32_ops=DEFAULT_PRESET.keep_fp32_ops, keep_fp32_pattern=r"layer\.\d+/output/dense/MatMul$",
)
INT8_LADDER = (DEFAULT_PRESET, PRESETS["ffn_output_fp32"])
"""The presets a build tries in order; the first whose graph passes the parity gate ships (else fp32)."""


def quantize_int8(fp32_path: Path, out_path: Path, preset: QuantizationPreset = DEFAULT_PRESET) -> dict[str, Any]:
    """Quantize ``fp32_path`` into ``out_path``; returns the preset for the manifest."""
    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and (n.name.endswith(preset.keep_fp32_suffixes) or
                                                                    (preset.keep_fp32_pattern and re.search(preset.keep_fp32_pattern, n.name)))]
    # onnxruntime's quantizer first splits a Gemm into "<name>_MatMul" + "<name>_Add"; exclude both spellings.
    keep += [name for n in graph.node if n.op_type in preset.keep_fp32_ops for name in (n.name, f"{n.name}_MatMul")]
    config = AutoQuantizationConfig.avx512_vnni(is_static=preset.is_static, per_channel=preset.per_channel, nodes_to_exclude=keep)
    work = out_path.parent / "_quantize"
    quantizer = ORTQuantizer.from_pretrained(fp32_path.parent, file_name=fp32_path.name)
    quantizer.quantize(save_dir=work, quantization_config=config)
    produced = next(work.glob("*_quantized.onnx"))
    shutil.move(str(produced), out_path)
    shutil.rmtree(work)
    return preset.as_dict() | {"fp32_nodes": len(keep)}
