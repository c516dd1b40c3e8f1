"""What a module is (the :class:`Module` protocol), what it sees of a turn (:class:`TurnContext`), and the
shared loading for modules backed by one ONNX encoder artifact with a temperature-calibrated head.

Adding a module is one class satisfying :class:`Module` plus one ``models`` block in the config
(``{"module": "<registered name>", "enabled": true, "inference_timeout": 0.5, ...its __init__ args}``);
register the class under the entry-point group ``penny_slm.modules``. The orchestrator plans from
``requires``/``provides``: a module that requires ``response`` runs after the main LLM, one that
requires another module's output runs after it, the rest run in parallel before the LLM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from penny_slm.errors import NotLoadedError
from penny_slm.pipeline.adapters.onnx_encoder import OnnxEncoder
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.results import EncoderOutput, NormalizedText
from penny_slm.rules.normalize import normalize

TURN_INPUTS = frozenset({"normalized", "profile"})
"""What every module may require before the main LLM; ``response`` is added after it."""
RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class TurnContext:
    """One turn as a module sees it. ``outputs`` maps each ``provides`` name of the modules that already
    ran to their result; ``response`` is the main LLM's reply (``None`` before it); ``profile`` is the
    user's learned profile as read at the start of the turn (``None`` when it could not be read in time);
    ``deadline`` is the monotonic time by which the module must answer (set by the orchestrator), so a
    module that generates text can stop its own work in time. ``safe_mode``: the kill switch is on; a module
    must not generate text (the guard keeps its rules and tone head and skips trim and rewrite).
    ``instructions``: the system prompt without its research notes, set after the main LLM (the guard checks
    the response does not echo it; quoting search results is an answer, not an echo)."""

    user_id: str
    message: NormalizedText
    message_id: str = ""
    profile: Any = None
    response: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    safe_mode: bool = False
    instructions: str = ""

    @classmethod
    def of(cls, message: str, *, response: str | None = None, user_id: str = "local") -> TurnContext:
        """A turn for one module used on its own (CLI, eval, tests)."""
        return cls(user_id, normalize(message), response=response)

    def with_outputs(self, outputs: Mapping[str, Any]) -> TurnContext:
        """A copy with more outputs of earlier modules (the context is frozen, so each stage gets its own)."""
        return dataclasses.replace(self, outputs={**self.outputs, **outputs})


@runtime_checkable
class Module(Protocol):
    """Everything the orchestrator needs of a module. ``run`` is pure (no database writes: updates go back
    in the result and the layer queues them); ``fallback`` is the documented safe result when ``run``
    times out or fails, and must not fail itself."""

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]]
    provides: ClassVar[frozenset[str]]

    @property
    def model_version(self) -> str | None:
        """The version of the model behind the results (logged with each run and each learned change); None without one."""

    def load(self, store: ModelRegistry) -> None:
        """Load and verify what the module needs from the registry; all I/O happens here, before the first turn."""

    def run(self, turn: TurnContext) -> Any:
        """The module's result for this turn (what it ``provides``)."""

    def fallback(self, turn: TurnContext, reason: str) -> Any:
        """The safe result when ``run`` timed out or failed (``reason`` says which); must not fail."""


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities from one vector of logits (shifted by the maximum so large logits do not overflow)."""
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()  # type: ignore[no-any-return]


class EncoderHeadModule:
    """``__init__`` stores settings; ``load`` does the I/O (checksummed artifact → onnxruntime session)."""

    default_artifact: ClassVar[str]

    def __init__(self, model_path: str = "", max_tokens: int = 128, execution_providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 intra_op_threads: int = 1) -> None:
        self.artifact = model_path or self.default_artifact  # the registry name this module loads
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
        """The loaded encoder; ``NotLoadedError`` with what to call when ``load`` has not run."""
        if self.encoder is None:
            raise NotLoadedError(f"{type(self).__name__} used before load(); call load(ModelRegistry(...)) first")
        return self.encoder

    def encode(self, texts: list[str]) -> list[EncoderOutput]:
        """The encoder's outputs for ``texts`` (none for an empty list, without touching the model)."""
        return self.require_loaded().encode(texts) if texts else []

    def encode_each(self, texts: list[str]) -> list[EncoderOutput]:
        """The encoder's outputs for ``texts``, one call per text: what each text gets alone. A dynamically quantized
        (int8) graph takes each activation's scale over the whole batch, padding included, so in a padded batch a
        text's output moves with its neighbours (docs/MEASUREMENTS.md, the tone head's sentence check)."""
        return [self.encode([text])[0] for text in texts]

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: the logits divided by the temperature fitted at build time, then softmax."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)

