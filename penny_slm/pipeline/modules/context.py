"""Context step: learn the user's formality, technical depth and slang from every message, in well under a millisecond.

Per message it measures (``rules/register.py``, ``rules/slang.py``) and records the markers: message length,
the local time of day (:func:`time_of_day`) and, from the layer, the research classifier's category as the topic.

**Mood** (when the ``mood`` artifact is built: ``penny-slm models build --only mood``): the fine-tuned MiniLM head
gives the message's calibrated probabilities over ``MOODS``; the argmax is the mood marker (``mood``,
``mood_confidence``). The user's running mood is a mix of the seven moods learned by the same evidence-weighted
EMA as the numeric dimensions, per class: ``r' = r + alpha · (p − r)`` with the same ``alpha``, starting from the
uniform mix (worth ``PRIOR_WEIGHT`` messages). ``tone_shift`` (:class:`~penny_slm.results.ToneShift`) reports the
message's mood, the running mood after it (the mix's argmax) and ``departure``: the total-variation distance
``½ Σ |p − r|`` between the message's probabilities and the mix before it. The profile keeps the mix
(``mood_mix``, rounded to 3 digits) and its argmax (``mood``, charted by the dashboard), each as a
:class:`PreferenceUpdate` with the mood artifact's version. Without the artifact, ``tone_shift`` and the mood
marker stay ``None`` and ``note`` says so.

**Profile update rule** (evidence-weighted EMA, :func:`learn`). Each numeric dimension is a running estimate
``v`` with an evidence count ``n`` (messages seen). A message observing ``x`` with weight ``w`` (1 for one
message) moves it by ``alpha = w / (PRIOR_WEIGHT + min(n, EVIDENCE_CAP) + w)``:
``v' = v + alpha · (x − v)``, ``n' = n + w``. A user with no estimate starts from the neutral ``0.5``
(the prior, worth ``PRIOR_WEIGHT`` = 4 messages), so the first message moves the value a fifth of the way to
its observation and a consistent pattern keeps pulling it there; ``EVIDENCE_CAP`` = 16 keeps the step at least
1/21 so the estimate can still follow a user who changes. Confidence is ``n / (n + CONFIDENCE_HALF)`` (at most
``MAX_CONFIDENCE``): 0.5, the prompt builder's bar, after 4 messages. The profile stores the value and its
confidence; the count is read back from the confidence (``n = HALF · c / (1 − c)``), so no schema change is
needed. Every change is a :class:`PreferenceUpdate` (message id, evidence, model version) that goes through the
sync manager and the learning controls (rate limits, approvals) like any other.

Slang: every detected term is a ``slang:<term>`` update with its gloss; the sync manager counts the uses and
keeps the first sighting and an example (``learning.max_new_slang_per_day`` bounds new terms).

Stated preferences (``rules/preferences.py``): a request addressed to Penny about its replies ("keep your answers
short", "no jargon please") is a ``reply_length`` or ``jargon`` update at once, at confidence
``STATED_CONFIDENCE``: the user said it, so it is not averaged over messages; a later statement replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import EncoderHeadModule, TurnContext
from penny_slm.results import MOODS, ContextUpdate, Mood, PreferenceUpdate, ToneShift
from penny_slm.rules import register
from penny_slm.rules.preferences import stated_preferences
from penny_slm.rules.slang import SLANG_PREFIX, detect_slang

TRACKER_VERSION = "context-rules-3"
"""The ``model_version`` of what the rules learn (formality, depth, slang); with the mood head loaded the step's
version is ``context-rules-3+mood-vN`` and the mood updates carry ``mood-vN``."""
CONTEXT_NOTE = "formality and technical depth are rule-based estimates (rules/register.py); the mood head is not built yet"
MOOD_NOTE = "formality and technical depth are rule-based estimates (rules/register.py); mood by the {version} head"
MOOD_ARTIFACT = "mood"
MOOD_KEYS = ("mood", "mood_mix")
"""Profile keys of the running mood: its argmax and the mix itself (the prompt builder never prints them)."""
MARKER_CONFIDENCE = 0.3
"""Measured markers (time of day, topic) are stored but are not preferences: below the prompt builder's 0.5
bar, so they never reach the system prompt (the 135M local model echoes anything it is shown)."""

PRIOR_VALUE = 0.5
PRIOR_WEIGHT = 4.0
EVIDENCE_CAP = 16.0
CONFIDENCE_HALF = 4.0
MAX_CONFIDENCE = 0.95
DIMENSIONS = ("formality_level", "technical_depth")
EVIDENCE_CHARS = 80
STATED_CONFIDENCE = 0.9
"""A preference the user states outright: above the prompt builder's 0.5 bar from the first statement."""

BUCKETS: tuple[tuple[int, int, str], ...] = ((0, 5, "night"), (5, 12, "morning"), (12, 18, "afternoon"),
                                             (18, 23, "evening"), (23, 24, "night"))
"""Local time of day, ``[start, end)`` hours: night 23:00–04:59, morning 05:00–11:59, afternoon 12:00–17:59,
evening 18:00–22:59."""


def time_of_day(hour: int) -> str:
    """The bucket of a local hour (0–23); ``ValueError`` for anything else."""
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise ValueError(f"hour must be an integer 0-23, got {hour!r}")
    return next(name for start, end, name in BUCKETS if start <= hour < end)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One dimension after a message: ``value`` 0–1, ``evidence`` (messages' worth), ``confidence`` 0–1."""

    value: float
    evidence: float
    confidence: float


def evidence_of_confidence(confidence: float | None) -> float:
    """The evidence count a stored confidence stands for (the inverse of :func:`confidence_of`)."""
    if confidence is None or confidence <= 0.0:
        return 0.0
    c = min(confidence, MAX_CONFIDENCE)
    return round(CONFIDENCE_HALF * c / (1.0 - c), 2)  # undo the stored confidence's 4-digit rounding


def confidence_of(evidence: float) -> float:
    """The confidence of an estimate backed by ``evidence`` messages: ``n / (n + 4)``, at most ``MAX_CONFIDENCE``."""
    return min(MAX_CONFIDENCE, evidence / (evidence + CONFIDENCE_HALF))


def learn(value: float | None, confidence: float | None, observed: float, weight: float = 1.0) -> Estimate:
    """The update rule in the module docstring: ``value``/``confidence`` as stored (``None``: nothing learned yet)."""
    n = evidence_of_confidence(confidence) if value is not None else 0.0
    v = PRIOR_VALUE if value is None else float(value)
    alpha = weight / (PRIOR_WEIGHT + min(n, EVIDENCE_CAP) + weight)
    new_n = n + weight
    return Estimate(round(v + alpha * (observed - v), 4), round(new_n, 3), round(confidence_of(new_n), 4))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class MoodEstimate:
    """The running mood after a message: the mix over ``MOODS``, the evidence behind it, and the message's departure."""

    mix: dict[Mood, float]
    evidence: float
    confidence: float
    departure: float

    @property
    def mood(self) -> Mood:
        """The running mood: the mix's largest share (ties: the first in ``MOODS``)."""
        return max(MOODS, key=lambda m: self.mix[m])


def stored_mix(value: Any) -> dict[Mood, float] | None:
    """A stored ``mood_mix`` as a mix over every mood (None when it is missing or not a mix of numbers)."""
    if not isinstance(value, Mapping) or set(value) != set(MOODS) or any(_number(value[m]) is None for m in MOODS):
        return None
    return {m: float(value[m]) for m in MOODS}


def learn_mood(mix: Mapping[Mood, float] | None, confidence: float | None, probs: Mapping[Mood, float],
               weight: float = 1.0) -> MoodEstimate:
    """The running-mood rule in the module docstring: ``mix``/``confidence`` as stored (``None``: nothing learned yet),
    ``probs`` the message's calibrated mood probabilities."""
    n = evidence_of_confidence(confidence) if mix is not None else 0.0
    before = {m: (1.0 / len(MOODS) if mix is None else float(mix[m])) for m in MOODS}
    alpha = weight / (PRIOR_WEIGHT + min(n, EVIDENCE_CAP) + weight)
    after = {m: round(before[m] + alpha * (float(probs[m]) - before[m]), 3) for m in MOODS}
    departure = 0.5 * sum(abs(float(probs[m]) - before[m]) for m in MOODS)
    return MoodEstimate(after, round(n + weight, 3), round(confidence_of(n + weight), 4), round(departure, 4))


class MoodHead(EncoderHeadModule):
    """The fine-tuned MiniLM mood head (``mood`` artifact): calibrated probabilities over ``MOODS`` for one message."""

    default_artifact: ClassVar[str] = MOOD_ARTIFACT

    def probabilities(self, text: str) -> dict[Mood, float]:
        """P(mood) for ``text`` (temperature-calibrated at build time); the empty text is all ``neutral``."""
        if not text.strip():
            return {m: float(m == "neutral") for m in MOODS}
        p = self.calibrated(self.encode([text])[0].logits["mood"])
        return {m: float(p[i]) for i, m in enumerate(MOODS)}

    def predict_many(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities for many texts (rows in ``texts``' order, columns in ``MOODS``' order)."""
        return np.stack([self.calibrated(out.logits["mood"]) for out in self.encode(texts)]) if texts else np.zeros((0, len(MOODS)))


class ContextTracker:
    """The context step: per message, markers (length, time of day, topic), formality, technical depth and slang by rules,
    mood by the mood head when it is built, and the profile updates they imply."""
    name: ClassVar[str] = "context"
    requires: ClassVar[frozenset[str]] = frozenset({"normalized", "profile"})
    provides: ClassVar[frozenset[str]] = frozenset({"context"})

    clock: Callable[[], datetime] = staticmethod(datetime.now)
    """Local time source (a test pins it on an instance)."""

    def __init__(self, mood_path: str = MOOD_ARTIFACT, mood_max_tokens: int = 64,
                 execution_providers: tuple[str, ...] = ("CPUExecutionProvider",), intra_op_threads: int = 1) -> None:
        """``mood_path``: the mood head's artifact name (used when built; otherwise the step runs without mood);
        ``mood_max_tokens``: where a message is cut for the head (64: the 99.99th percentile of the training texts is
        under it)."""
        self.mood_path = mood_path
        self.mood_head = MoodHead(mood_path, mood_max_tokens, execution_providers, intra_op_threads)
        self.mood_version: str | None = None

    @property
    def model_version(self) -> str:
        """The rules' version, plus the mood head's when it is loaded."""
        return TRACKER_VERSION if self.mood_version is None else f"{TRACKER_VERSION}+{MOOD_ARTIFACT}-{self.mood_version}"

    def load(self, store: ModelRegistry) -> None:
        """The mood head when its artifact is built (checksums verified); the rules need nothing and the slang lexicon
        loads on first use."""
        if store.active_version(self.mood_path) is None:
            self.mood_version = None
            return
        self.mood_head.load(store)
        self.mood_version = self.mood_head.model_version

    def run(self, turn: TurnContext) -> ContextUpdate:
        """Measure the message and return its markers, its slang and the profile updates learned from it (nothing is
        written here)."""
        text = turn.message.original
        hour = self.clock().hour
        formality = register.formality(text)
        depth = register.technical_depth(text)
        slang = detect_slang(text)
        markers: dict[str, Any] = {"message_chars": len(text), "message_words": len(text.split()), "local_hour": hour,
                                   "time_of_day": time_of_day(hour), "mood": None}
        profile = turn.profile
        dims = getattr(profile, "dimensions", {}) or {}
        confs = getattr(profile, "confidence", {}) or {}
        known_slang = getattr(profile, "slang", {}) or {}
        updates: list[dict[str, Any] | PreferenceUpdate] = [
            {"key": "active_time_of_day", "value": time_of_day(hour), "confidence": MARKER_CONFIDENCE}]
        evidence = text[:EVIDENCE_CHARS]
        for key, observed in zip(DIMENSIONS, (formality, depth), strict=True):
            old = _number(dims.get(key))
            est = learn(old, confs.get(key) if old is not None else None, observed)
            updates.append(PreferenceUpdate(key, old, est.value, evidence, turn.message_id, est.confidence, TRACKER_VERSION))
        for span in slang:
            example = text[max(0, span.start - 30): span.end + 30]
            updates.append(PreferenceUpdate(SLANG_PREFIX + span.term, known_slang.get(span.term), span.gloss, example,
                                            turn.message_id, span.confidence, TRACKER_VERSION))
        for stated in stated_preferences(text):
            updates.append(PreferenceUpdate(stated.key, dims.get(stated.key), stated.value, text[stated.start: stated.end],
                                            turn.message_id, STATED_CONFIDENCE, TRACKER_VERSION))
        shift = None
        if self.mood_version is not None:
            shift = self._mood(text, dims, confs, evidence, turn.message_id, updates)
            markers |= {"mood": shift.mood, "mood_confidence": shift.confidence}
        note = CONTEXT_NOTE if shift is None else MOOD_NOTE.format(version=f"{MOOD_ARTIFACT} {self.mood_version}")
        return ContextUpdate(slang, shift, markers, formality, depth, tuple(updates), note)

    def _mood(self, text: str, dims: Mapping[str, Any], confs: Mapping[str, float], evidence: str, message_id: str,
              updates: list[dict[str, Any] | PreferenceUpdate]) -> ToneShift:
        """The message's mood, the running mood it updates (module docstring) and their two profile updates."""
        probs = self.mood_head.probabilities(text)
        mood = max(MOODS, key=lambda m: probs[m])
        old_mix = stored_mix(dims.get("mood_mix"))
        est = learn_mood(old_mix, confs.get("mood_mix") if old_mix is not None else None, probs)
        version = f"{MOOD_ARTIFACT}-{self.mood_version}"
        old_mood = dims.get("mood") if isinstance(dims.get("mood"), str) else None
        updates.append(PreferenceUpdate("mood", old_mood, est.mood, evidence, message_id, est.confidence, version))
        updates.append(PreferenceUpdate("mood_mix", old_mix, dict(est.mix), evidence, message_id, est.confidence, version))
        return ToneShift(mood, round(probs[mood], 4), est.mood, est.mix[est.mood], est.departure,
                         round(est.evidence - 1.0, 3))

    def fallback(self, turn: TurnContext, reason: str) -> ContextUpdate:
        """Learning nothing is better than learning wrong: an empty update, nothing queued."""
        return ContextUpdate((), None, {}, None, None, (), f"fallback: {reason}")
