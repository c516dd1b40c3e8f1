"""Runtime protocols. An adapter is one runtime kind (ONNX encoder, GGUF, HTTP), not one model."""

from __future__ import annotations

from typing import Protocol

from penny_slm.results import EncoderOutput


class Encoder(Protocol):
    def load(self) -> None: ...

    def encode(self, texts: list[str]) -> list[EncoderOutput]: ...
