"""What an adapter is: one class per runtime kind, satisfying one of these protocols.

``Encoder`` runs the ONNX encoder heads; ``Generator`` produces text (a local causal LM or an
OpenAI-compatible endpoint). Generators take ``deadline_s`` so the work itself stops when time is up;
``asyncio.wait_for`` alone would only abandon it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from penny_slm.results import EncoderOutput

StopReason = Literal["eos", "max_tokens", "deadline", "stop"]

LogitsHook = Callable[[list[int], np.ndarray], None]
"""Called before each token is chosen with the ids generated so far and the next-token logits (1-D,
writable); it masks what must not come next by setting entries to ``-inf``."""
Drafter = Callable[[list[int]], list[int]]
"""Proposes the tokens likely to follow the ids generated so far (prompt lookup: the rest of the text
being copied); ``OnnxCausalLM`` verifies them in one forward pass."""


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message, in the role/content shape every runtime takes."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Generation:
    """A finished generation with the timings the bench and the rewriter report."""

    text: str
    n_tokens: int
    first_token_s: float  # time to first token; 0.0 when nothing was generated
    seconds: float
    stop_reason: StopReason
    model: str
    forward_passes: int = 0  # local runtimes: model runs it took (fewer than tokens when drafts are kept)

    @property
    def tokens_per_s(self) -> float:
        """Decode speed after the first token; 0.0 when there is nothing to measure."""
        decode = self.seconds - self.first_token_s
        return (self.n_tokens - 1) / decode if self.n_tokens > 1 and decode > 0 else 0.0


@runtime_checkable
class Encoder(Protocol):
    """A runtime that turns texts into head outputs (the research classifier's and the tone head's)."""

    def load(self) -> None:
        """Open the model; called once before the first ``encode``."""

    def encode(self, texts: list[str]) -> list[EncoderOutput]:
        """One output per text, in order."""


@runtime_checkable
class Generator(Protocol):
    """A runtime that answers a chat (main LLM, rewriter), local or over HTTP."""

    def load(self) -> None:
        """Open the model or check the endpoint's settings; called once before the first ``chat``."""

    def chat(self, messages: list[Message], *, max_tokens: int, deadline_s: float,
             logits_hook: LogitsHook | None = None) -> Generation:
        """Answer ``messages`` in at most ``max_tokens`` tokens, stopping by ``deadline_s``; ``logits_hook`` may
        change each step's scores (local runtimes)."""
