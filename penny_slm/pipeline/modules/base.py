"""Shared loading for modules backed by one ONNX encoder artifact with a temperature-calibrated head."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from penny_slm.errors import NotLoadedError
from penny_slm.pipeline.adapters.onnx_encoder import OnnxEncoder
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.results import EncoderOutput


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()  # type: ignore[no-any-return]


class EncoderHeadModule:
    """``__init__`` stores settings; ``load`` does the I/O (checksummed artifact → onnxruntime session)."""

    artifact: ClassVar[str]

    def __init__(self, max_tokens: int = 128, execution_providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 intra_op_threads: int = 1) -> None:
        self.max_tokens = max_tokens
        self.execution_providers = execution_providers
        self.intra_op_threads = intra_op_threads
        self.encoder: OnnxEncoder | None = None
        self.temperature = 1.0
        self.model_version: str | None = None

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        """Load the active (or given) version after the registry has verified its checksums."""
        artifact = store.load(self.artifact, version)
        self.load_files(artifact.file("model.onnx"), artifact.file("tokenizer.json"),
                        float(artifact.manifest.details["temperature"]), artifact.manifest.version)

    def load_files(self, model_path: Path, tokenizer_path: Path, temperature: float, version: str) -> None:
        """Load from explicit files: the build evaluates a staged artifact this way before registering it."""
        self.temperature = temperature
        self.encoder = OnnxEncoder(model_path, tokenizer_path, providers=self.execution_providers,
                                   intra_op_threads=self.intra_op_threads, max_tokens=self.max_tokens)
        self.encoder.load()
        self.model_version = version

    def require_loaded(self) -> OnnxEncoder:
        if self.encoder is None:
            raise NotLoadedError(f"{type(self).__name__} used before load(); call load(ModelRegistry(...)) first")
        return self.encoder

    def encode(self, texts: list[str]) -> list[EncoderOutput]:
        return self.require_loaded().encode(texts) if texts else []

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)
