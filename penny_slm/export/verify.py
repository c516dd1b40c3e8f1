"""Gate an int8 graph on agreement with the torch model it came from (label agreement per head)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from penny_slm.errors import ParityError
from penny_slm.training.heads import TrainedModel, predict_logits

DECISION_AGREEMENT = 0.995
"""A head Penny acts on (needs_research, cheerleader tone) must agree with torch on 99.5% (issue #2)."""
INFORMATIONAL_AGREEMENT: dict[str, float] = {"category": 0.98}
"""The category label only feeds reasoning and analytics; int8 noise moves more of its 11-way near-ties."""


@dataclass(frozen=True, slots=True)
class ParityReport:
    minimum: dict[str, float]
    agreement: dict[str, float]
    max_abs_diff: dict[str, float]
    n: int

    def as_dict(self) -> dict[str, object]:
        return {"minimum": self.minimum, "agreement": self.agreement, "max_abs_diff": self.max_abs_diff, "n": self.n}


def onnx_logits(onnx_path: Path, trained: TrainedModel, texts: list[str], max_length: int = 128) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    out: dict[str, list[np.ndarray]] = {n.removesuffix("_logits"): [] for n in names}
    for i in range(0, len(texts), 64):
        enc = trained.tokenizer(texts[i : i + 64], padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        for name, value in zip(names, session.run(names, feeds)):
            out[name.removesuffix("_logits")].append(value)
    return {k: np.concatenate(v) for k, v in out.items()}


def check_parity(onnx_path: Path, trained: TrainedModel, texts: list[str],
                 min_agreement: dict[str, float] | None = None) -> ParityReport:
    """Compare argmax labels per head; raise ``ParityError`` if a head agrees on fewer than its minimum."""
    minimum = min_agreement or {h: INFORMATIONAL_AGREEMENT.get(h, DECISION_AGREEMENT) for h in trained.task.heads}
    reference = predict_logits(trained.model, trained.tokenizer, texts)
    exported = onnx_logits(onnx_path, trained, texts)
    agreement = {h: float((reference[h].argmax(1) == exported[h].argmax(1)).mean()) for h in reference}
    diff = {h: float(np.abs(reference[h] - exported[h]).max()) for h in reference}
    report = ParityReport(minimum, agreement, diff, len(texts))
    failing = {h: a for h, a in agreement.items() if a < minimum.get(h, 1.0)}
    if failing:
        raise ParityError(f"{onnx_path.name} agrees with torch on {failing} of {len(texts)} texts; minimum {minimum}", diff)
    return report
