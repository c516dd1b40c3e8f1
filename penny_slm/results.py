"""Every value that crosses a stage boundary: frozen, slotted dataclasses with the framework's field names.

Read this file first. Tuples inside the package, lists in ``to_dict()`` (JSON for Penny and the CLI).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, get_args

Category = Literal[
    "current_events", "prices_markets", "sports", "weather", "verification",
    "coding", "math", "concept_explanation", "creative", "personal", "general",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
RESEARCH_CATEGORIES: frozenset[Category] = frozenset(
    {"current_events", "prices_markets", "sports", "weather", "verification"}
)

ViolationName = Literal[
    "coffee_reference", "asterisk_action", "excess_exclamation", "caps_enthusiasm",
    "cheerleader_tone", "name_overuse",
]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _ToDict:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: tuples become lists, nested results become dicts."""
        out = _plain(self)
        assert isinstance(out, dict)
        return out


@dataclass(frozen=True, slots=True)
class NormalizedText(_ToDict):
    """``text`` is for detection only; ``offsets[i]`` is the index in ``original`` of ``text[i]``."""

    original: str
    text: str
    offsets: tuple[int, ...]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ResearchClassification(_ToDict):
    """The research classifier's verdict.

    confidence: calibrated probability (0–1) that ``needs_research`` is the right call.
    """

    needs_research: bool
    confidence: float
    reasoning: str
    category: Category


@dataclass(frozen=True, slots=True)
class EncoderOutput:
    """Raw head logits from one encoder pass, keyed by head name (``research``, ``category`` ...)."""

    logits: dict[str, Any]
    n_tokens: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class Change(_ToDict):
    """One edit the guard made. ``start``/``end`` index the text the edit was applied to (the original response)."""

    rule: ViolationName
    start: int
    end: int
    before: str
    after: str
    source: Literal["rule", "trim", "slm"] = "rule"


@dataclass(frozen=True, slots=True)
class GuardResult(_ToDict):
    """The personality guard's verdict on one LLM response.

    confidence: probability (0–1) that ``rewritten_response`` is free of violations. The rule layer is
    deterministic, so a response whose fixed text passes the detectors again scores 1.0 for the absolute rules.
    rewrite_status: what happened to soft (tone) violations: ``not_needed``, ``trimmed`` (whole
    cheerleading sentences dropped, no model generation), ``rewritten`` (by the SLM), ``discarded: <why>``
    (the rewrite failed the re-check; the rule-fixed text is returned) or ``skipped: <why>``.
    """

    original_response: str
    violations_detected: tuple[ViolationName, ...]
    rewritten_response: str
    changes_made: tuple[Change, ...]
    confidence: float
    rewrite_status: str = "not_needed"


@dataclass(frozen=True, slots=True)
class ContextUpdate(_ToDict):
    """What the context step learned from one message (framework field names).

    Until the context tracker's heads exist, only what can be measured honestly is filled in:
    ``context_markers`` (message length, local hour, topic category from the classifier). The learned
    dimensions are ``None`` and ``note`` says so; nothing is guessed.
    """

    slang_detected: tuple[str, ...]
    tone_shift: str | None
    context_markers: dict[str, Any]
    formality_level: float | None  # 0 (casual) – 1 (formal) once measured
    technical_depth: float | None  # 0 – 1 once measured
    updates: tuple[dict[str, Any], ...]  # queued to the sync manager as profile dimension updates
    note: str = ""


R = TypeVar("R")
OutcomeStatus = Literal["ok", "fallback", "timeout", "error", "disabled"]


@dataclass(frozen=True, slots=True)
class ModuleOutcome(_ToDict, Generic[R]):
    """One module's run inside a turn: its result (the fallback's, if it timed out or failed) and why."""

    module: str
    status: OutcomeStatus
    result: R | None
    latency_ms: float
    model_version: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TurnResult(_ToDict):
    """Everything ``SLMLayer.process`` did for one user turn; ``final_response`` is what the user sees.

    ``research``, ``context`` and ``guard`` are the built-in modules' outcomes (``disabled`` when switched
    off); ``modules`` holds every outcome of the turn by module name, third-party modules and ``llm`` included.
    """

    user_id: str
    message: str
    research: ModuleOutcome[ResearchClassification]
    context: ModuleOutcome[ContextUpdate]
    research_notes: str
    system_prompt: str
    llm: ModuleOutcome[str]
    guard: ModuleOutcome[GuardResult]
    final_response: str
    timings_ms: dict[str, float]
    total_ms: float
    modules: dict[str, ModuleOutcome[Any]]
