"""Personality guard: enforce Penny's persona on every LLM response.

Stages (DESIGN.md): rules (deterministic, absolute prohibitions) → tone head (``cheerleader_tone``,
scored on the rule-fixed text) → generative rewrite of a residual tone violation, re-checked. The
rewriter (issue #5) is not built yet: a tone violation is reported, the rule-fixed text is returned,
and ``rewrite_status`` says the rewrite was skipped.

``confidence`` = P(the returned text is violation-free): 0 if the rules still find something (never
seen in tests), otherwise 1 − P(cheerleader) of the returned text from the calibrated tone head.
"""

from __future__ import annotations

from typing import ClassVar

from penny_slm.config import Persona, SLMConfig, load_persona
from penny_slm.errors import InputError
from penny_slm.pipeline.modules.base import EncoderHeadModule
from penny_slm.results import GuardResult, ViolationName
from penny_slm.rules.prohibitions import CODE, detect, fix

TONE_ARTIFACT = "tone"
NO_REWRITER = "skipped: no generative rewriter yet (issue #5); rule-fixed text returned"


class ToneScorer(EncoderHeadModule):
    """P(cheerleader) for a response from the fine-tuned, calibrated ``tone`` head."""

    artifact: ClassVar[str] = TONE_ARTIFACT

    def p_cheerleader(self, text: str) -> float:
        """Tone lives in prose: code is replaced by a neutral placeholder before scoring."""
        self.require_loaded()
        prose = tone_window(CODE.sub(" code ", text).strip())
        if not prose:
            return 0.0
        return float(self.calibrated(self.encode([prose])[0].logits["tone"])[1])


TONE_WINDOW_WORDS = (24, 12)
"""Words scored from the start and the end of a long response. Gushing sits in openers and closers
(the tone data is built that way, and so are real LLM replies); scoring ~45 tokens instead of 256
keeps the head near its latency budget on long answers. Praise buried mid-answer is missed."""


def tone_window(prose: str, head_tail: tuple[int, int] = TONE_WINDOW_WORDS) -> str:
    words = prose.split()
    head, tail = head_tail
    if len(words) <= head + tail:
        return prose
    return " ".join([*words[:head], "…", *words[-tail:]])


class PersonalityGuard:
    name: ClassVar[str] = "guard"
    requires: ClassVar[frozenset[str]] = frozenset({"response"})
    provides: ClassVar[frozenset[str]] = frozenset({"guard"})

    def __init__(self, persona: Persona | None = None, tone_threshold: float = 0.5, max_tokens: int = 256,
                 execution_providers: tuple[str, ...] = ("CPUExecutionProvider",), intra_op_threads: int = 1) -> None:
        self.persona = persona or load_persona()
        self.tone_threshold = tone_threshold
        self.tone = ToneScorer(max_tokens, execution_providers, intra_op_threads)

    @classmethod
    def from_config(cls, cfg: SLMConfig, persona: Persona | None = None) -> PersonalityGuard:
        return cls(persona, 0.5, 256, cfg.runtime.execution_providers, cfg.runtime.intra_op_threads)

    def load(self, store: object, version: str | None = None) -> None:
        self.tone.load(store, version)  # type: ignore[arg-type]

    @property
    def model_version(self) -> str | None:
        return self.tone.model_version

    def _rules(self, response: object) -> tuple[str, tuple[ViolationName, ...], tuple]:  # type: ignore[type-arg]
        if not isinstance(response, str):
            raise InputError(f"expected a str response, got {type(response).__name__}")
        hits = detect(response, self.persona)
        violations: tuple[ViolationName, ...] = tuple(dict.fromkeys(h.rule for h in hits))
        rewritten, changes = fix(response, self.persona) if hits else (response, ())
        return rewritten, violations, changes

    def predict(self, response: str) -> GuardResult:
        rewritten, violations, changes = self._rules(response)
        p_cheer = self.tone.p_cheerleader(rewritten)
        status = "not_needed"
        if p_cheer >= self.tone_threshold:
            violations = (*violations, "cheerleader_tone")
            status = NO_REWRITER
        rules_clean = not detect(rewritten, self.persona)
        confidence = round(1.0 - p_cheer, 4) if rules_clean else 0.0
        return GuardResult(response, violations, rewritten, changes, confidence, status)

    def fallback(self, response: str, reason: str) -> GuardResult:
        """Rules only (no model involved): the guard's floor when the tone head times out or fails."""
        rewritten, violations, changes = self._rules(response)
        rules_clean = not detect(rewritten, self.persona)
        return GuardResult(response, violations, rewritten, changes, 1.0 if rules_clean else 0.0,
                           f"skipped: {reason}; tone not checked")
