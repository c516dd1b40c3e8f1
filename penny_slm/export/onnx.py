"""Export a ``MultiHeadEncoder`` to ONNX with optimum, validated against torch at export time."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from optimum.exporters.onnx.convert import export, validate_model_outputs
from optimum.exporters.onnx.model_configs import BertOnnxConfig

from penny_slm.errors import ParityError
from penny_slm.training.heads import MultiHeadEncoder

OPSET = 17
FP32_ATOL = 1e-4


class MultiHeadOnnxConfig(BertOnnxConfig):  # type: ignore[misc]
    """BERT inputs as optimum defines them; one ``{head}_logits`` output per head."""

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        """One logits output per head, batch axis dynamic: the export's output names."""
        return {f"{name}_logits": {0: "batch_size"} for name in self._config.head_sizes}


def export_onnx(model: MultiHeadEncoder, out_path: Path) -> dict[str, Any]:
    """Write ``out_path`` (fp32) and check every output against torch within ``FP32_ATOL``."""
    model.eval()
    onnx_config = MultiHeadOnnxConfig(model.config, task="feature-extraction")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _, outputs = export(model, onnx_config, out_path, opset=OPSET)
    optimum_log = logging.getLogger("optimum")
    level = optimum_log.level
    optimum_log.setLevel(logging.ERROR)  # its validation logs every output at INFO; restored below
    try:
        validate_model_outputs(onnx_config, model, out_path, outputs, atol=FP32_ATOL, use_subprocess=False)
    except Exception as exc:  # optimum raises AtolError/ShapeError/OutputMatchError; surface as ours
        raise ParityError(f"fp32 export does not match torch: {exc}", {}) from exc
    finally:
        optimum_log.setLevel(level)
    return {"opset": OPSET, "outputs": outputs, "fp32_atol": FP32_ATOL}
