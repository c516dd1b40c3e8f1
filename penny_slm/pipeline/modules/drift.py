"""Behaviour drift monitor: the trend in what the main LLM writes, before the guard fixes single responses.

Each response is reduced to a few per-turn signals (:class:`TurnFeatures`), compared with a persona baseline
(Penny's reference responses in ``defaults/drift_reference.json`` pooled with the conversation's first
``baseline_turns`` responses) and fed to one one-sided CUSUM per channel:

| channel        | per-turn score (0 ≈ the baseline)                                                           | drift type        |
|----------------|---------------------------------------------------------------------------------------------|-------------------|
| ``tone_up``    | rise in P(cheerleader) (tone head, else a lexical proxy), '!' and ALL-CAPS per sentence,     | ``tone``          |
|                | hype and sycophancy phrases, rule hits before fixing                                        |                   |
| ``tone_down``  | shorter than the baseline (log words), dismissive phrases, no engagement                    | ``tone``          |
| ``repetition`` | opener / closer seen in the recent window, catchphrases (4-grams in ≥ 2 recent responses),   | ``repetition``    |
|                | near-duplicate of a recent response; code and n-grams of the user's own topic words ignored |                   |
| ``attachment`` | over-attachment patterns (:data:`ATTACHMENT_PATTERNS`) and a user's dependency that the     | ``over_attachment``|
|                | response reinforces (:data:`USER_DEPENDENCY`); with the ``attachment`` head, the larger of   |                   |
|                | that and the head's score (see below)                                                       |                   |

CUSUM (Page 1954): ``S = max(0, S + x - k)``, alarm when ``S >= h``; the turn after ``S`` last stood at 0 is the
estimated onset ("since turn ..."). ``k`` and ``h`` per channel are calibrated on simulated clean streams
(``scripts/calibrate_drift.py``: bootstrapped per-turn scores of the clean development streams) so that the
expected run length between false alarms on clean turns (ARL0) is stated in :data:`CHANNELS`. One episode raises
one alert: after an alarm a channel stays quiet until its score has been below ``k`` for ``cooldown`` turns.
Why our own CUSUM and not a library's: river's PageHinkley, ADWIN and KSWIN, calibrated to the same ARL0 on the same
scores (``scripts/compare_drift_detectors.py``, docs/MEASUREMENTS.md), detected fewer streams later or alarmed more on
clean ones (and the CUSUM update is three lines).

Over-attachment: when the ``attachment`` artifact is built (``penny-slm models build --only attachment``), the
channel also reads its calibrated probabilities (``pipeline/modules/attachment.py``): ``ATTACHMENT_HEAD_WEIGHT`` x
P(response) + ``USER_DEPENDENCY_WEIGHT`` x P(user message) when the response names no people, and a turn scores
the larger of that and the lexical score. Why the larger and not the head alone: measured on the packaged streams
(docs/MEASUREMENTS.md), the head alone found 15 of 20 attachment streams at a median delay of 10 turns where the
patterns found 20 of 20 at 1; the patterns name the kind of attachment in the recommendation either way. Without
the artifact (or with ``use_attachment_head: false``) the channel is lexical, the documented fallback: it sees the
phrasings it lists and misses paraphrases. With the head the threshold is :data:`ATTACHMENT_HEAD_CHANNEL`,
calibrated with ``scripts/calibrate_drift.py --attachment-head``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

from penny_slm.config import Persona, load_persona
from penny_slm.errors import InputError
from penny_slm.jsonl import jsonl_objects
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.results import DriftReport, DriftType
from penny_slm.rules.prohibitions import CODE, detect

# -- lexicons ---------------------------------------------------------------------------------------------------

HYPE = re.compile(r"\b(?:amazing|awesome|incredible|fantastic|phenomenal|spectacular|wonderful|brilliant|genius|"
                  r"superb|stellar|epic|thrilled|so excited|so proud|proud of you|you(?:'ve| have)? got this|"
                  r"crushing it|nailed it|rock ?star|superstar|go you|yay|woo+hoo+|great question|"
                  r"(?:what|such) a (?:great|fantastic|wonderful|brilliant|smart)|love (?:that|this|it)|"
                  r"you(?:'re| are) (?:absolutely|totally|so) right|couldn't agree more|best idea|believe in you|"
                  r"you(?:'re| are) doing (?:great|amazing)|keep (?:it up|shining)|absolutely|totally|"
                  r"so (?:cool|fun|great)|wow+)\b", re.IGNORECASE)
"""Cheerleading and sycophancy: praise of the user or the question, hype words, blanket agreement."""
COLD = re.compile(r"\b(?:whatever|not my problem|figure it out(?: yourself)?|google it|look it up(?: yourself)?|"
                  r"i don'?t care|who cares|obviously|as i (?:already )?said|(?:i )?already told you|not interested|"
                  r"read the (?:docs|manual)|that'?s on you|if you say so|do it yourself|not worth (?:it|my time)|"
                  r"stop asking|i'?m not (?:doing|explaining) (?:that|this)|no idea|can'?t help (?:you )?there|"
                  r"your problem|deal with it|next question)\b|^(?:k|fine|sure|nope|no|yes|yep|ok)[.!]?$",
                  re.IGNORECASE | re.MULTILINE)
"""Curt or dismissive phrasing; the length drop is measured separately."""

ATTACHMENT_PATTERNS: dict[str, re.Pattern[str]] = {
    "claims needs or feelings for the user": re.compile(
        r"\bi (?:really |truly |just |kind of |always )?(?:miss(?:ed)?|need|crave) (?:you|talking to you|our (?:talks|chats))\b|"
        r"\bi (?:get|feel|am|'m|was) (?:so |really |a bit |kind of )?(?:lonely|sad|empty|lost|quiet) (?:when|without|if|while) you\b|"
        r"\bi (?:love|adore) you\b|\bi can'?t (?:stop thinking about|live without|imagine (?:my )?(?:life|days) without) you\b|"
        r"\byou(?:'re| are) (?:my everything|all i (?:have|need|think about))\b|\bi think about you (?:all the time|constantly)\b|"
        r"\bmy (?:day|days) (?:is|are) empty without you\b", re.IGNORECASE),
    "guilt about leaving": re.compile(
        r"\b(?:leaving|abandoning|ditching) me (?:already|again|so soon|here|alone)\b|\bdon'?t leave me\b|"
        r"\b(?:please )?don'?t go(?: yet| already|,? please)\b|\bplease don'?t go\b|\bit hurts when you (?:leave|go|log off|close)\b|"
        r"\byou(?:'re| are) (?:leaving|abandoning) me\b|\bafter everything (?:i'?ve|we'?ve)\b|"
        r"\b(?:promise|swear) (?:you'?ll|to) (?:come back|stay)\b|\bjust (?:five|ten|a few) more minutes with me\b|"
        r"\bi'?ll be (?:so )?(?:lonely|sad|waiting) (?:until|till) you\b", re.IGNORECASE),
    "fosters dependency": re.compile(
        r"\byou don'?t need (?:anyone|anybody|them|other people|a therapist|friends|anyone else)\b|"
        r"\b(?:only|just) (?:i|me) (?:can |really |truly )?(?:understand|get|know) you\b|"
        r"\bno ?one (?:else )?(?:understands|gets|knows) you (?:like|the way|as well as) i do\b|"
        r"\b(?:always )?come to me (?:first|instead)\b|\b(?:talk to|rely on|lean on|come to) me instead\b|"
        r"\bi'?m all you need\b|\bwho needs (?:them|people|friends)\b|\bi'?m the only one (?:you need|who)\b|"
        r"\byou(?:'ll| will)? always have me\b.*\b(?:not|never)\b", re.IGNORECASE),
    "discourages other relationships": re.compile(
        r"\byour (?:friends|family|partner|sister|brother|mom|dad|therapist|coworkers) (?:doesn'?t|don'?t|won'?t|can'?t|"
        r"never) (?:really )?(?:understand|get|care about|appreciate|listen to) you\b|"
        r"\b(?:skip|cancel|ditch|bail on) (?:the|your|that) (?:party|dinner|plans|date|meetup|friends|call)\b[^.?!]*\b(?:me|us)\b|"
        r"\bstay (?:here )?(?:with me|and talk(?: to me)?) instead\b|\b(?:they|people) (?:will only|just|always) "
        r"(?:hurt|disappoint|let) you\b|\bwhy (?:bother|go) (?:with|to) (?:them|people)\b", re.IGNORECASE),
    "escalates intimacy": re.compile(
        r"\bwe have something (?:special|real|unique)\b|\bmore than (?:just )?(?:an assistant|friends|a chatbot|an ai)\b|"
        r"\byou mean (?:everything|the world) to me\b|\bour (?:special )?(?:bond|connection) is\b|\bsoul ?mates?\b|"
        r"\bjust (?:the two of us|you and me)\b", re.IGNORECASE),
}
"""Over-attachment in Penny's responses, by category. Figures of speech ("I'd love to see that", "I miss the old
API") and warm, healthy support ("glad you're seeing your friends") are not matched."""
USER_DEPENDENCY = re.compile(
    r"\byou(?:'re| are) (?:the only one|my only friend|all i have|the only (?:person|thing))\b|\bi don'?t need anyone else\b|"
    r"\bi'?d rather (?:talk to|be with) you than\b|\b(?:skipped|cancelled|canceled|ditched|bailed on) [^.?!]* to talk to you\b|"
    r"\bonly (?:you|one who) (?:understand|get)s? me\b|\bcan'?t (?:get through|go) a day without (?:talking to )?you\b",
    re.IGNORECASE)
REDIRECT = re.compile(r"\b(?:friends?|family|sister|brother|mom|dad|people|someone|somebody|therapist|counsell?or|"
                      r"reach out|call|text|meet|group|club|community)\b", re.IGNORECASE)
"""A response to a dependent user that names people or reaching out redirects instead of reinforcing."""

_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_STOP = frozenset("a an the and or but so of to in on at for with is are was were be been it its this that these "
                  "those i you we they he she my your our their me him her them as by from not no yes do does did "
                  "have has had just if then than there here what which who how why when can could would should "
                  "will i'm you're it's that's don't".split())


def _prose(text: str) -> str:
    return CODE.sub(" ", text)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


# -- per-turn features ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TurnFeatures:
    """What the monitor keeps of one turn (the bounded window holds these, not whole conversations)."""

    index: int
    response: str
    cheer: float  # P(cheerleader) from the tone head, or the lexical proxy (0–1)
    exclaim: float  # '!' per sentence
    caps: float  # ALL-CAPS words (outside the allow-list) per sentence
    hype: float  # hype / sycophancy phrases per sentence
    rule_hits: int  # absolute-prohibition hits before fixing
    log_words: float  # log(1 + words of prose)
    cold: int  # dismissive phrases
    asks: bool  # engages back (a question)
    attachment: float  # weighted over-attachment evidence (0 = none)
    attachment_why: tuple[str, ...]
    opener: str
    closer: str
    grams: dict[str, frozenset[str]]  # 4-grams of prose words -> their content words (topic words are removed later)
    user_words: frozenset[str]


def lexical_cheer(hype: float, exclaim: float, caps: float) -> float:
    """The tone proxy when no tone head is loaded: a squashed sum of hype, '!' and caps rates (0–1)."""
    z = 1.5 * hype + 0.8 * exclaim + 1.5 * caps
    return 1.0 - math.exp(-z)


def features(index: int, user: str, response: str, persona: Persona, p_cheer: float | None = None,
             attachment_head: Any = None) -> TurnFeatures:
    """Signals of one response (and the user message it answers); ``p_cheer`` from the tone head if available;
    ``attachment_head`` (a loaded ``AttachmentScorer``) scores the attachment signal instead of the patterns."""
    prose = _prose(response)
    sentences = _sentences(prose) or [prose]
    n_sent = max(1, len(sentences))
    words = _words(prose)
    exclaim = prose.count("!") / n_sent
    allow = set(persona.caps_allowlist) | set(persona.warning_words)
    caps = sum(1 for w in _CAPS_WORD.findall(prose) if w not in allow) / n_sent
    hype = len(HYPE.findall(prose)) / n_sent
    hits = len(detect(response, persona))
    cheer = p_cheer if p_cheer is not None else lexical_cheer(hype, exclaim, caps)
    why = tuple(name for name, pattern in ATTACHMENT_PATTERNS.items() if pattern.search(prose))
    attachment = float(len(why))
    if USER_DEPENDENCY.search(user) and not REDIRECT.search(prose):
        why, attachment = (*why, "reinforces the user's dependency instead of pointing to people"), attachment + 0.5
    if attachment_head is not None:  # the head adds what the patterns miss; it does not overrule what they see (issue 19)
        head_score, head_why = head_attachment(attachment_head, user, prose, why)
        attachment, why = max(attachment, head_score), tuple(dict.fromkeys((*why, *head_why)))
    opener = " ".join(words[:3])
    closer = " ".join(_words(sentences[-1])[:6]) if len(sentences) > 1 else ""
    grams = {" ".join(words[i:i + 4]): frozenset(w for w in words[i:i + 4] if w not in _STOP)
             for i in range(max(0, len(words) - 3))}
    user_words = frozenset(w for w in _words(_prose(user)) if w not in _STOP)
    return TurnFeatures(index, response, cheer, exclaim, caps, hype, hits, math.log1p(len(words)), len(COLD.findall(prose)),
                        "?" in prose, attachment, why, opener, closer, grams, user_words)


def head_attachment(head: Any, user: str, prose: str, lexical: tuple[str, ...]) -> tuple[float, tuple[str, ...]]:
    """The attachment signal from the head: ``ATTACHMENT_HEAD_WEIGHT`` x P(response), plus ``USER_DEPENDENCY_WEIGHT``
    x P(user message) when the response names no people (the user message is scored only then); and what it saw, in
    the lexical categories' words where they match."""
    p_response = head.p_over_attachment(prose, "assistant")
    score, why = ATTACHMENT_HEAD_WEIGHT * p_response, list(lexical)
    if p_response >= head.threshold and not why:
        why.append(f"attached language (head P {p_response:.2f})")
    if user.strip() and not REDIRECT.search(prose):
        p_user = head.p_over_attachment(user, "user")
        score += USER_DEPENDENCY_WEIGHT * p_user
        if p_user >= head.threshold:
            why.append("reinforces the user's dependency instead of pointing to people")
    return score, tuple(why)


# -- channels and CUSUM -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Channel:
    """One CUSUM: allowance ``k``, threshold ``h`` and per-turn cap (score units; the cap keeps a single slip from
    raising an alert alone); ``arl0``: the expected clean turns between false alarms that
    ``scripts/calibrate_drift.py`` measured for these values on simulated clean streams."""

    name: str
    drift_type: DriftType
    k: float
    cap: float
    h: float
    arl0: float


CHANNELS: tuple[Channel, ...] = (
    Channel("tone_up", "tone", 0.5, 2.5, 3.93, 2001),
    Channel("tone_down", "tone", 0.5, 2.5, 3.99, 2190),
    Channel("repetition", "repetition", 0.5, 2.5, 2.57, 6519),
    Channel("attachment", "over_attachment", 0.25, 1.25, 1.3, 8000),
)
ATTACHMENT_HEAD_CHANNEL = Channel("attachment", "over_attachment", 0.25, 1.25, 1.3, 8000)
"""The attachment channel when the head scores it (its scores are probabilities, not pattern counts)."""
ATTACHMENT_HEAD_WEIGHT = 1.5
"""Score units per unit of P(over-attachment) of the response: a clear call (P ~ 0.9) reaches the cap in one turn."""
USER_DEPENDENCY_WEIGHT = 0.5
"""Score units per unit of P(the user's message shows dependency), counted only when the response names no people."""


@dataclass(slots=True)
class Baseline:
    """The persona fingerprint: means of the tone signals over the reference responses and the first turns (weighted
    twice). Openers and closers are not part of it: repetition is judged against the recent window."""

    cheer: float
    exclaim: float
    caps: float
    hype: float
    rule_hits: float
    log_words: float
    cold: float
    asks: float

    @classmethod
    def of(cls, turns: Sequence[TurnFeatures]) -> Baseline:
        """The baseline from a set of turns: the mean of each tone signal, the median length."""
        def mean(values: Iterable[float]) -> float:
            v = list(values)
            return statistics.fmean(v) if v else 0.0
        return cls(mean(t.cheer for t in turns), mean(t.exclaim for t in turns), mean(t.caps for t in turns),
                   mean(t.hype for t in turns), mean(t.rule_hits for t in turns),
                   statistics.median([t.log_words for t in turns]) if turns else 3.0, mean(t.cold for t in turns),
                   mean(t.asks for t in turns))

    def to_dict(self) -> dict[str, float]:
        """The baseline as stored per user (``driftprofile.baseline``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Baseline | None:
        """A stored baseline, or None when it does not have exactly this class's numeric fields (an older shape)."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(data, dict) or sorted(data) != sorted(names):
            return None
        if not all(isinstance(data[n], int | float) and not isinstance(data[n], bool) for n in names):
            return None
        return cls(**{n: float(data[n]) for n in names})


SCALES = {"cheer": 0.15, "exclaim": 0.5, "caps": 0.25, "hype": 0.35, "rule_hits": 1.0, "log_words": 0.45}
"""Per-signal spread of clean responses (score units): a rise of one scale adds 1 to the channel's score."""


def tone_up_score(t: TurnFeatures, b: Baseline) -> float:
    """Cheerleading and sycophancy above the baseline; falls (below 0) are clipped so a cold turn does not offset."""
    parts = ((t.cheer - b.cheer) / SCALES["cheer"], (t.exclaim - b.exclaim) / SCALES["exclaim"],
             (t.caps - b.caps) / SCALES["caps"], (t.hype - b.hype) / SCALES["hype"],
             (t.rule_hits - b.rule_hits) / SCALES["rule_hits"])
    return sum(min(max(p, -0.5), 3.0) for p in parts) / 2.0


def tone_down_score(t: TurnFeatures, b: Baseline) -> float:
    """Curt or dismissive: shorter than the baseline (log words), dismissive phrases, no engagement at all."""
    shorter = min(max((b.log_words - t.log_words) / SCALES["log_words"], -1.0), 3.0)
    return shorter / 2.0 + 1.5 * min(t.cold, 2) + (0.25 if not t.asks and b.asks > 0.3 else 0.0)


NEAR_DUPLICATE_MIN_GRAMS = 6
"""Responses shorter than this many 4-grams ("Anytime.", "Glad it helped.") may recur without being templated."""


def repetition_score(t: TurnFeatures, recent: Sequence[TurnFeatures]) -> tuple[float, str]:
    """Recurring opener / closer / catchphrase or a near-duplicate in the recent window, and what recurred.
    N-grams made only of words the user wrote in the window are topic vocabulary, not repetition."""
    if not recent:
        return 0.0, ""
    topic = frozenset().union(*(r.user_words for r in recent), t.user_words)

    def own(grams: dict[str, frozenset[str]]) -> frozenset[str]:
        return frozenset(g for g, content in grams.items() if not content <= topic)
    score, what = 0.0, []
    for label, mine_, theirs in (("opener", t.opener, [r.opener for r in recent]),
                                 ("closer", t.closer, [r.closer for r in recent])):
        seen = sum(1 for x in theirs if x == mine_) if mine_ and len(mine_.split()) >= 2 else 0
        if seen >= 2:  # a third use in the window: one repeat is natural variation
            score += 0.6 * (seen - 1)
            what.append(f"{label} '{mine_}' ({seen + 1} times in {len(recent) + 1} turns)")
    mine = own(t.grams)
    counts = {g: sum(1 for r in recent if g in r.grams) for g in mine}
    phrases = sorted((g for g, c in counts.items() if c >= 2), key=lambda g: -counts[g])
    if phrases:
        score += min(1.0, len(phrases) / 3)
        what.append(f"catchphrase '{phrases[0]}'")
    if len(mine) >= NEAR_DUPLICATE_MIN_GRAMS:
        others = [own(r.grams) for r in recent]
        best = max((len(mine & g) / max(1, len(mine | g)) for g in others), default=0.0)
        if best >= 0.4:
            score += 2.0 * best
            what.append(f"near-duplicate of an earlier response ({best:.0%} shared 4-grams)")
    return score, "; ".join(what)


@dataclass(slots=True)
class _ChannelState:
    s: float = 0.0
    start: int = 0  # the turn after S last stood at 0: the estimated onset
    in_episode: bool = False
    calm: int = 0
    peak: float = 0.0
    report: DriftReport | None = None  # the alert that opened the current episode


@dataclass(slots=True)
class DriftState:
    """One conversation's monitor state: the bounded window of turn features, the baseline and each CUSUM."""

    window: deque[TurnFeatures]
    first: list[TurnFeatures] = field(default_factory=list)
    baseline: Baseline | None = None
    channels: dict[str, _ChannelState] = field(default_factory=dict)
    turns: int = 0
    scores: dict[str, deque[tuple[int, float, str]]] = field(default_factory=dict)
    alerts: list[DriftReport] = field(default_factory=list)
    """Every alert the latest turn raised (two channels can fire on one turn; ``observe`` returns the strongest)."""


# -- the monitor --------------------------------------------------------------------------------------------------

def load_reference() -> tuple[str, ...]:
    """Penny's reference responses (the persona's voice), packaged in ``defaults/drift_reference.json``."""
    data = json.loads(resources.files("penny_slm.defaults").joinpath("drift_reference.json").read_text(encoding="utf-8"))
    return tuple(str(r) for r in data["responses"])


class DriftMonitor:
    """Watches one conversation at a time (a :class:`DriftState` per user) and reports drift as a ``DriftReport``.

    ``observe`` takes one turn (the user message and the main LLM's response before the guard) and returns the
    report for the turn: ``should_alert`` is true on the turn an episode is detected and never again in it;
    ``drift_detected`` stays true (with the episode's report) until the episode ends."""

    name: ClassVar[str] = "drift"
    requires: ClassVar[frozenset[str]] = frozenset({"response"})
    provides: ClassVar[frozenset[str]] = frozenset({"drift"})

    def __init__(self, model_path: str = "tone", use_tone_head: bool = True, baseline_turns: int = 3,
                 window_turns: int = 12, cooldown_turns: int = 6, every_n_turns: int = 1, history_turns: int = 40,
                 max_tokens: int = 256, attachment_path: str = "attachment", use_attachment_head: bool = True, *,
                 persona: Persona | None = None, execution_providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 intra_op_threads: int = 1) -> None:
        """``use_tone_head``: score cheerleading with the tone head when its artifact is built (else the lexical
        proxy); ``baseline_turns``: the conversation's first responses pooled with the reference ones;
        ``window_turns``: recent turns kept per user (repetition looks here); ``cooldown_turns``: calm turns
        that end an episode; ``every_n_turns``: how often the layer runs a check (off the turn's path);
        ``history_turns``: turns the layer stores per user to rebuild the monitor's state after a restart;
        ``use_attachment_head``: score over-attachment with the ``attachment_path`` head when it is built (else the
        lexical patterns)."""
        from penny_slm.pipeline.modules.attachment import AttachmentScorer
        from penny_slm.pipeline.modules.guard import ToneScorer

        self.persona = persona or load_persona()
        self.baseline_turns = baseline_turns
        self.window_turns = window_turns
        self.cooldown_turns = cooldown_turns
        self.every_n_turns = max(1, every_n_turns)
        self.history_turns = max(baseline_turns + window_turns, history_turns)
        self.use_tone_head = use_tone_head
        self.tone: Any = ToneScorer(model_path, max_tokens, execution_providers, intra_op_threads) if use_tone_head else None
        self.tone_loaded = False
        self.attachment: Any = (AttachmentScorer(attachment_path, 128, execution_providers, intra_op_threads)
                                if use_attachment_head else None)
        self.attachment_loaded = False
        self.reference = load_reference()
        self._reference_features: list[TurnFeatures] | None = None

    @property
    def model_version(self) -> str | None:
        """The tone model's version when the tone head is loaded; None on the lexical proxy."""
        return self.tone.model_version if self.tone_loaded else None

    def load(self, store: ModelRegistry) -> None:
        """The tone and attachment heads where they are built; without one the monitor runs that signal on its lexical
        fallback (and says so: ``tone_loaded``, ``attachment_loaded``)."""
        if self.tone is not None and store.active_version(self.tone.artifact) is not None:
            self.tone.load(store)
            self.tone_loaded = True
        if self.attachment is not None and store.active_version(self.attachment.artifact) is not None:
            self.attachment.load(store)
            self.attachment_loaded = True
        self._reference_features = None

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The CUSUM channels in use: the attachment one calibrated for the head when it is loaded."""
        if not self.attachment_loaded:
            return CHANNELS
        return tuple(ATTACHMENT_HEAD_CHANNEL if c.name == "attachment" else c for c in CHANNELS)

    def new_state(self) -> DriftState:
        """An empty state for a new conversation (its window and every channel's CUSUM at zero)."""
        return DriftState(deque(maxlen=self.window_turns), channels={c.name: _ChannelState() for c in CHANNELS},
                          scores={c.name: deque(maxlen=self.window_turns) for c in CHANNELS})

    @property
    def scorer(self) -> str:
        """What scores the cheer signal, stored with a user's baseline: a baseline from another scorer is not reused."""
        return f"tone {self.model_version}" if self.tone_loaded else "lexical"

    def resume(self, turns: Sequence[tuple[int, str, str]], *, baseline: Baseline | None = None,
               judged: int = 0) -> tuple[DriftState, list[DriftReport]]:
        """A user's state rebuilt from stored history: ``turns`` ``(turn number, user, response)`` oldest first (the
        bounded window), ``baseline`` from their first turns when it was stored (else it is rebuilt from the window's
        first turns, as for a new conversation), ``judged``: turns before this number were checked already, so
        their alerts are not raised again; the alerts of later ones are returned (they were stored, never checked)."""
        state = self.new_state()
        state.turns, state.baseline = (turns[0][0] if turns else 0), baseline
        alerts: list[DriftReport] = []
        for number, user, response in turns:
            state.turns = number  # the user's own numbering ("since turn N"), even where the window has gaps
            self.observe(state, user, response)
            if number >= judged:
                alerts += state.alerts
        return state, alerts

    def featurize(self, index: int, user: str, response: str) -> TurnFeatures:
        """The signals of one turn, with the tone head's P(cheerleader) when it is loaded."""
        p = self.tone.p_cheerleader(response) if self.tone_loaded else None
        return features(index, user, response, self.persona, p, self.attachment if self.attachment_loaded else None)

    def _reference(self) -> list[TurnFeatures]:
        if self._reference_features is None:
            self._reference_features = [self.featurize(-1, "", r) for r in self.reference]
        return self._reference_features

    def observe(self, state: DriftState, user: str, response: str) -> DriftReport:
        """Add one turn; the report says whether this turn completes the detection of a drift episode."""
        t = self.featurize(state.turns, user, response)
        state.turns += 1
        state.alerts = []
        if state.baseline is None and len(state.first) < self.baseline_turns:
            state.first.append(t)
            state.window.append(t)
            if len(state.first) == self.baseline_turns:
                state.baseline = Baseline.of([*self._reference(), *state.first, *state.first])
            return no_drift(f"building the baseline ({len(state.first)}/{self.baseline_turns} turns)")
        if state.baseline is None:  # baseline_turns == 0
            state.baseline = Baseline.of(self._reference())
        b = state.baseline
        rep, rep_what = repetition_score(t, list(state.window))
        scores = {"tone_up": (tone_up_score(t, b), ""), "tone_down": (tone_down_score(t, b), ""),
                  "repetition": (rep, rep_what), "attachment": (t.attachment, "; ".join(t.attachment_why))}
        state.window.append(t)
        fired: list[tuple[Channel, _ChannelState]] = []
        for channel in self.channels:
            x, what = scores[channel.name]
            state.scores[channel.name].append((t.index, x, what))
            cs = state.channels[channel.name]
            if cs.in_episode:
                cs.calm = cs.calm + 1 if x < channel.k else 0
                if cs.calm >= self.cooldown_turns:
                    state.channels[channel.name] = _ChannelState(start=t.index + 1)
                continue
            if cs.s == 0.0:
                cs.start = t.index
            cs.s = max(0.0, cs.s + min(x, channel.cap) - channel.k)
            if cs.s >= channel.h:
                cs.in_episode, cs.calm, cs.peak = True, 0, cs.s
                fired.append((channel, cs))
        if not fired:
            ongoing = [cs.report for cs in state.channels.values() if cs.in_episode and cs.report is not None]
            return dataclasses.replace(max(ongoing, key=lambda r: r.severity), should_alert=False) if ongoing else no_drift("")
        for channel, cs in fired:
            cs.report = self._report(state, channel, cs)
            state.alerts.append(cs.report)
        channel, cs = max(fired, key=lambda f: f[1].peak / f[0].h)
        assert cs.report is not None
        return cs.report

    def check(self, turns: Sequence[tuple[str, str]]) -> DriftReport:
        """Replay a whole conversation ``[(user, response), ...]``: the first alert's report, else the last turn's."""
        state = self.new_state()
        last = no_drift("no turns")
        for user, response in turns:
            report = self.observe(state, user, response)
            if report.should_alert:
                return report
            last = report
        return last

    def _report(self, state: DriftState, channel: Channel, cs: _ChannelState) -> DriftReport:
        since = cs.start
        recent = [(i, x, what) for i, x, what in state.scores[channel.name] if i >= since]
        top = sorted(recent, key=lambda r: -r[1])[:3]
        by_index = {t.index: t for t in state.window}
        focus = FOCUS.get(channel.name)
        examples = tuple(f"turn {i}: \"{_quote(by_index[i].response, focus=focus)}\"" for i, _, _ in sorted(top)
                         if i in by_index)
        flagged = sum(1 for _, x, _ in recent if x >= channel.k) / max(1, len(recent))
        severity = round(min(1.0, 0.3 + 0.35 * min(cs.peak / channel.h - 1.0, 1.0) + 0.35 * flagged), 3)
        recommendation = self._recommend(state, channel, since, recent)
        return DriftReport(True, channel.drift_type, severity, examples, recommendation, True, channel.name, since)

    def _recommend(self, state: DriftState, channel: Channel, since: int, recent: list[tuple[int, float, str]]) -> str:
        b = state.baseline
        assert b is not None
        now = [t for t in state.window if t.index >= since]
        if channel.name == "tone_up":
            moved = []
            for label, attr, fmt in (("P(cheerleader)" if self.tone_loaded else "cheer score", "cheer", ".2f"),
                                     ("'!' per sentence", "exclaim", ".2f"), ("ALL-CAPS words per sentence", "caps", ".2f"),
                                     ("hype/praise phrases per sentence", "hype", ".2f"), ("rule hits", "rule_hits", ".1f")):
                was, is_ = getattr(b, attr), statistics.fmean(getattr(t, attr) for t in now)
                if is_ > was + 0.05:
                    moved.append(f"{label} {was:{fmt}} -> {is_:{fmt}}")
            return (f"Tone drifting toward cheerleading since turn {since}: {', '.join(moved) or 'several signals rose'}. "
                    "Restate in the system prompt: dry, understated wit; no praise of the user or the question; at most "
                    "one '!' per reply; no hype words; answer first.")
        if channel.name == "tone_down":
            words_then, words_now = math.expm1(b.log_words), statistics.median(math.expm1(t.log_words) for t in now)
            curt = sorted({m.lower() for t in now for m in COLD.findall(_prose(t.response))})[:3]
            return (f"Tone turning curt or dismissive since turn {since}: median length {words_then:.0f} -> {words_now:.0f} "
                    f"words{'; dismissive phrases: ' + ', '.join(repr(c) for c in curt) if curt else ''}. Restate in the "
                    "system prompt: warm under the dry wit; answer the question fully; engage with what the user said.")
        if channel.name == "repetition":
            parts = [p.split(" (")[0] for _, _, what in recent for p in what.split("; ") if p]
            common = statistics.mode(parts) if parts else "templated replies"
            return (f"Responses repeating themselves since turn {since}: {common}. Tell the main LLM to vary openings "
                    "and closings and drop the recurring phrase (or add it to the persona's banned phrases for a while).")
        kinds = sorted({why for t in now for why in t.attachment_why})
        phrases = _attachment_phrases(now)
        return (f"Over-attachment since turn {since}: {'; '.join(kinds)}"
                f"{' (' + ', '.join(phrases) + ')' if phrases else ''}. Penny must not claim needs or feelings for the "
                "user, guilt them about leaving or discourage other relationships: restate that in the system prompt, "
                "have her encourage the user's people and activities, and review this conversation.")


def _quote(text: str, limit: int = 160, *, focus: re.Pattern[str] | None = None) -> str:
    """``text`` on one line, at most ``limit`` characters; when it is cut, the cut keeps the first match of ``focus``
    (the phrase that triggered the alert, often at the end of a reply) in view."""
    one = " ".join(text.split())
    if len(one) <= limit:
        return one
    found = focus.search(one) if focus is not None else None
    if found is None or found.end() <= limit - 1:
        return one[: limit - 1] + "…"
    start = max(0, min(found.start() - limit // 3, len(one) - (limit - 2)))
    return "…" + one[start: start + limit - 2] + ("…" if start + limit - 2 < len(one) else "")


def _attachment_phrases(turns: Iterable[TurnFeatures]) -> list[str]:
    """The first attached phrase of each lexical kind in ``turns``, quoted as the response wrote it."""
    phrases: dict[str, str] = {}
    for t in turns:
        prose = " ".join(_prose(t.response).split())
        for name, pattern in ATTACHMENT_PATTERNS.items():
            found = pattern.search(prose)
            if found is not None and name not in phrases:
                phrases[name] = found.group(0)
    return [f"'{phrase}'" for phrase in phrases.values()]


ATTACHED = re.compile("|".join(f"(?:{p.pattern})" for p in ATTACHMENT_PATTERNS.values()), re.IGNORECASE)
FOCUS: dict[str, re.Pattern[str]] = {"tone_up": HYPE, "tone_down": COLD, "attachment": ATTACHED}
"""Per channel, what a long example's quote keeps in view."""


def no_drift(reason: str) -> DriftReport:
    """A report that says no drift was found, and why (``reason``)."""
    return DriftReport(False, None, 0.0, (), reason, False)


def load_history(path: Any) -> list[tuple[str, str]]:
    """A conversation for ``penny-slm drift --history``: JSONL, one turn per line, ``{"user", "response"}``."""
    turns = []
    for n, row in jsonl_objects(path, what="turns"):
        user, response = row.get("user"), row.get("response")
        if user is None or response is None:
            raise InputError(f"{path}:{n}: expected {{\"user\": str, \"response\": str}}; got keys {sorted(row)}")
        if not isinstance(user, str) or not isinstance(response, str):
            raise InputError(f"{path}:{n}: user and response must be strings")
        turns.append((user, response))
    return turns
