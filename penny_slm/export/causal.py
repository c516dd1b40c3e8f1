"""Export a causal LM checkpoint (SmolLM2) to ONNX with a KV cache, then int8 dynamic quantization.

The folder written is what ``pipeline/adapters/onnx_causal.py`` loads: ``model.onnx`` (int8),
``tokenizer.json``, ``tokenizer_config.json`` (its chat template) and ``config.json`` (layer and
head counts for the cache). Measured on the project's machine (2026-11-24): fp32 539 MB → int8 137 MB.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from penny_slm.compat import require

KEEP_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "config.json", "generation_config.json", "special_tokens_map.json")


def export_causal_int8(checkpoint: Path, out_dir: Path) -> dict[str, Any]:
    """``checkpoint`` (save_pretrained folder) → ``out_dir`` with an int8 ``model.onnx`` and the tokenizer files."""
    exporters = require("optimum.exporters.onnx")
    ort_pkg = require("optimum.onnxruntime")
    configuration = require("optimum.onnxruntime.configuration")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fp32-", dir=out_dir.parent) as tmp:
        fp32_dir = Path(tmp)
        exporters.main_export(str(checkpoint), output=fp32_dir, task="text-generation-with-past", do_validation=False)
        fp32_mb = sum(p.stat().st_size for p in fp32_dir.glob("model.onnx*")) / 1e6
        quantizer = ort_pkg.ORTQuantizer.from_pretrained(fp32_dir, file_name="model.onnx")
        config = configuration.AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
        quantizer.quantize(save_dir=fp32_dir / "int8", quantization_config=config)
        shutil.move(str(next((fp32_dir / "int8").glob("*_quantized.onnx"))), out_dir / "model.onnx")
        for name in KEEP_FILES:
            source = fp32_dir / name if (fp32_dir / name).exists() else checkpoint / name
            if source.exists():
                shutil.copy(source, out_dir / name)
    return {"task": "text-generation-with-past", "fp32_mb": round(fp32_mb, 1),
            "int8_mb": round((out_dir / "model.onnx").stat().st_size / 1e6, 1),
            "quantization": {"name": "avx512_vnni_dynamic", "per_channel": False}}
