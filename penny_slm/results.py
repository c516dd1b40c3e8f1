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
Mood = Literal["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
MOODS: tuple[Mood, ...] = get_args(Mood)
"""Ekman's six emotions and neutral: the context step's moods, in the mood head's output order."""
RESEARCH_CATEGORIES: frozenset[Category] = frozenset(
    {"current_events", "prices_markets", "sports", "weather", "verification"}
)

ViolationName = Literal[
    "coffee_reference", "asterisk_action", "excess_exclamation", "caps_enthusiasm",
    "cheerleader_tone", "name_overuse", "repeated_text", "prompt_echo",
]
"""The persona's violations, then degenerate output no persona rule names (issue 23): ``repeated_text`` (a
sentence or phrase looped; the rule fix collapses it) and ``prompt_echo`` (the system prompt said back; the
turn falls back)."""


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
    (the rewrite failed the re-check; the rule-fixed text is returned), ``skipped: <why>``, or ``fallback: <why>``
    (the response echoed the system prompt: ``rewritten_response`` is the guard's fallback line).
    """

    original_response: str
    violations_detected: tuple[ViolationName, ...]
    rewritten_response: str
    changes_made: tuple[Change, ...]
    confidence: float
    rewrite_status: str = "not_needed"


@dataclass(frozen=True, slots=True)
class PreferenceUpdate(_ToDict):
    """One thing the context tracker learned from one message, on its way to the profile.

    key: a profile dimension (``formality_level``, ``technical_depth`` ...), ``persona.<setting>`` for a change
    to Penny's own persona (always waits for approval), or ``slang:<term>`` for a slang term, whose ``new`` is its
    gloss (a string) or ``{"gloss": str, "adopt": bool}``; ``adopt`` asks to use the term in Penny's own voice
    (always waits for approval).
    old: the value the tracker saw (the sync manager logs the stored value, which wins).
    new: the value learned (0–1 for the framework's numeric dimensions).
    evidence: the part of the message that shows it; the transparency log keeps an excerpt or only a hash of it
    (``learning.log_message_text``).
    source_turn: the id of the message it was learned from.
    confidence: 0–1, how sure the tracker is (the prompt builder shows values of 0.5 and above).
    model_version: the tracker model that produced it ("" = the context step's own version).
    """

    key: str
    old: Any
    new: Any
    evidence: str
    source_turn: str
    confidence: float = 0.5
    model_version: str = ""


@dataclass(frozen=True, slots=True)
class SlangSpan(_ToDict):
    """One slang term in a message: ``text[start:end]`` (the original text) is its surface form, ``term`` the lexicon
    entry, ``gloss`` its meaning ("" when unknown); ``confidence`` 0–1 (``rules/slang.py`` says how it is set)."""

    term: str
    start: int
    end: int
    confidence: float
    gloss: str = ""


@dataclass(frozen=True, slots=True)
class ToneShift(_ToDict):
    """The mood part of a context update (``pipeline/modules/context.py`` says how the running mood is learned).

    ``mood`` and ``confidence``: this message's mood and its calibrated probability; ``running_mood`` and
    ``running_confidence``: the user's running mood after this message and its share of the running mix;
    ``departure``: 0–1, the total-variation distance between this message's mood probabilities and the running mix
    before it (0: as usual for this user; 1: nothing in common); ``messages``: the evidence behind the running mix
    before this message (0: a first message, whose departure is measured against the uniform prior).
    """

    mood: Mood
    confidence: float
    running_mood: Mood
    running_confidence: float
    departure: float
    messages: float


@dataclass(frozen=True, slots=True)
class ContextUpdate(_ToDict):
    """What the context step learned from one message (framework field names).

    ``formality_level`` and ``technical_depth`` are this message's estimates (``pipeline/modules/context.py`` says
    how, and how the profile learns from them); ``context_markers`` holds message length, local hour, time of day,
    topic (the classifier's category), ``mood`` and ``mood_confidence`` (``None`` without a built mood head, as
    ``tone_shift``); ``note`` says what is not measured. ``None`` means not measured; nothing is guessed.
    """

    slang_detected: tuple[SlangSpan, ...]
    tone_shift: ToneShift | None
    context_markers: dict[str, Any]
    formality_level: float | None  # 0 (casual) – 1 (formal) once measured
    technical_depth: float | None  # 0 – 1 once measured
    updates: tuple[dict[str, Any] | PreferenceUpdate, ...]
    """Queued to the sync manager as profile updates: ``PreferenceUpdate``s, or dicts ``{"key", "value",
    "confidence"?}`` (the markers-only context step's dimension updates)."""
    note: str = ""


DriftType = Literal["tone", "over_attachment", "repetition"]
DRIFT_TYPES: tuple[DriftType, ...] = get_args(DriftType)


@dataclass(frozen=True, slots=True)
class DriftReport(_ToDict):
    """The drift monitor's verdict after a turn (``pipeline/modules/drift.py``).

    severity: 0–1 (0 when nothing drifted): how far past its threshold the signal went and how much of the episode
    it covers. examples: the turns that triggered it, quoted. should_alert: true only on the turn an episode is
    first detected (one episode, one alert). channel: which signal moved (``tone_up``, ``tone_down``,
    ``repetition``, ``attachment``); since_turn: the estimated onset (0-based turn index).
    """

    drift_detected: bool
    drift_type: DriftType | None
    severity: float
    examples: tuple[str, ...]
    recommendation: str
    should_alert: bool
    channel: str = ""
    since_turn: int | None = None


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
    ``safe_mode``: the kill switch was on for this turn (config or ``penny-slm kill``): nothing was learned and
    the guard ran its rules and tone head only, never a trim or a rewrite.
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
    safe_mode: bool = False


# -- learning controls (``pipeline/controls.py``): what Penny, the CLI and a person read ---------------------------

LogAction = Literal["applied", "clipped", "deferred", "awaiting_approval", "approved", "rejected", "expired", "blocked",
                    "rollback", "version"]
"""What a learning control did to a change: ``applied`` as asked; ``clipped`` (part applied, the rate limit's share);
``deferred`` (held until the rate window has room, then applied by itself); ``awaiting_approval`` (held for a person);
``approved`` / ``rejected`` / ``expired`` (how a held change ended); ``blocked`` (learning was off: kill switch or
config); ``rollback`` and ``version`` (profile versions)."""
PendingState = Literal["awaiting_approval", "deferred", "approved", "rejected", "expired", "released", "superseded"]


@dataclass(frozen=True, slots=True)
class LogEntry(_ToDict):
    """One row of the transparency log: what was learned, when (ISO 8601, UTC), from which message (``message_id``
    and ``evidence``: an excerpt of at most 80 characters or ``sha256:<hex>``), by which model version, and what a
    control did to it (``action``, ``detail``). ``new`` is the value after the change, or, for an action that applied
    nothing, the value asked for."""

    id: int
    at: str
    key: str
    action: str
    old: Any
    new: Any
    detail: str
    source: str
    message_id: str
    evidence: str
    model_version: str

    def line(self) -> str:
        """The entry as one line a person reads."""
        change = f"{_show(self.old)} -> {_show(self.new)}" if self.old is not None else f"= {_show(self.new)}"
        origin = f"message {self.message_id}" if self.message_id else f"from {self.source}"
        if self.evidence:
            origin += f" ({self.evidence})" if self.evidence.startswith("sha256:") else f' ("{self.evidence}")'
        model = f", model {self.model_version}" if self.model_version else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.at[:19].replace('T', ' ')}  #{self.id} {self.key} {change}  {self.action}{detail}  [{origin}{model}]"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class ProfileVersionInfo(_ToDict):
    """One profile version: ``profile`` is ``{"dimensions", "confidence", "slang"}`` as it stood; ``note`` says what
    made it (a batch of updates, an approval, a released deferral, a rollback)."""

    version: int
    at: str
    note: str
    profile: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PendingEntry(_ToDict):
    """One entry of the approval queue: a change that waits for a person (``awaiting_approval`` until ``expires``)
    or for a rate limit's window (``deferred`` until ``not_before``), or how it ended."""

    id: int
    user_id: str
    kind: str
    key: str
    old: Any
    new: Any
    state: str
    reason: str
    created: str
    expires: str | None
    not_before: str | None
    message_id: str
    evidence: str

    def line(self) -> str:
        """One line for ``profile pending``: id, key, old and new value, state with its deadline, and why."""
        when = f"expires {self.expires[:16]}" if self.state == "awaiting_approval" and self.expires else (
            f"applies after {self.not_before[:16]}" if self.state == "deferred" and self.not_before else self.state)
        old = "" if self.old is None else f"{_show(self.old)} -> "
        return f"#{self.id} {self.key} {old}{_show(self.new)}  {self.state} ({when}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Decision(_ToDict):
    """What ``approve`` / ``reject`` did. ``changed`` is true only for the call that decided the entry: a repeated
    or concurrent decision finds it decided and changes nothing (``state`` says how it ended)."""

    change_id: int
    requested: Literal["approve", "reject"]
    state: str
    changed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ControlStatus(_ToDict):
    """The kill switch: ``kill_switch`` is the database's (``penny-slm kill`` / ``resume``; survives restarts),
    ``config_kill_switch`` is ``learning.kill_switch``. ``safe_mode`` = either is on: no learning and no generative
    rewriting. ``learning`` = updates are learned (``learning.enabled`` and not safe mode)."""

    safe_mode: bool
    learning: bool
    kill_switch: bool
    config_kill_switch: bool
    learning_enabled: bool
    changed_at: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteReport(_ToDict):
    """What ``delete`` removed: rows per table, and how the freed space was scrubbed. ``vacuumed``: SQLite ran
    ``VACUUM`` (PostgreSQL ``VACUUM (FULL, ANALYZE)`` on every table it deleted from); ``wal_truncated``: SQLite's
    write-ahead log was checkpointed and truncated to zero bytes (None on PostgreSQL); ``note`` says what the
    backend does not promise."""

    user_id: str
    rows: dict[str, int]
    backend: str
    vacuumed: bool
    wal_truncated: bool | None
    note: str
