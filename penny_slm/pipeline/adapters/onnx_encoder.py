"""onnxruntime + ``tokenizers``: one encoder pass yields every head's logits. No torch at run time."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from penny_slm.errors import NotLoadedError
from penny_slm.results import EncoderOutput

log = logging.getLogger(__name__)


def available_providers(wanted: tuple[str, ...]) -> list[str]:
    """Keep the configured providers this onnxruntime build has, in order; CPU is always last."""
    have = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in have and p != "CPUExecutionProvider"]
    return [*chosen, "CPUExecutionProvider"]


class OnnxEncoder:
    """An ONNX encoder with its ``tokenizers`` tokenizer: the run-time half of every encoder head, no torch."""
    def __init__(self, model_path: Path, tokenizer_path: Path, *, providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 intra_op_threads: int = 1, max_tokens: int = 128) -> None:
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.providers = providers
        self.intra_op_threads = intra_op_threads
        self.max_tokens = max_tokens
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._outputs: list[str] = []

    def load(self) -> None:
        """Open the graph and the tokenizer with the configured providers and threads."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.model_path), options, providers=available_providers(self.providers))
        self._outputs = [o.name for o in self._session.get_outputs()]
        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        log.debug("loaded %s with providers %s", self.model_path, self._session.get_providers())

    @property
    def session_providers(self) -> list[str]:
        """The providers onnxruntime actually uses (empty before ``load()``): what the dashboard shows."""
        return self._session.get_providers() if self._session else []

    def encode(self, texts: list[str]) -> list[EncoderOutput]:
        """Tokenize ``texts`` (cut at ``max_tokens``), run the graph once and return each text's outputs."""
        if self._session is None or self._tokenizer is None:
            raise NotLoadedError("OnnxEncoder.encode() called before load()")
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        feeds: dict[str, Any] = {
            name: np.zeros((len(texts), width), dtype=np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            feeds["input_ids"][row, :n] = enc.ids
            feeds["attention_mask"][row, :n] = enc.attention_mask
            feeds["token_type_ids"][row, :n] = enc.type_ids
        values = self._session.run(self._outputs, feeds)
        return [
            EncoderOutput(
                logits={name.removesuffix("_logits"): value[row] for name, value in zip(self._outputs, values)},
                n_tokens=len(enc.ids),
                truncated=bool(enc.overflowing),
            )
            for row, enc in enumerate(encodings)
        ]
