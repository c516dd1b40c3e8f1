"""Research classifier: does this message need a live web search?

Decision rule (documented contract, tested in tests/pipeline/test_research.py):
- ``p`` = calibrated P(needs search) = softmax(research_logits / T)[yes], T fitted on dev at build time.
- The model's call is ``p >= 0.5``; ``confidence`` is the calibrated probability that the returned
  ``needs_research`` is right (``p`` or ``1 - p``).
- If the model's confidence is below ``confidence_threshold``, the classifier says ``needs_research=True``
  (an extra search costs one call; a stale answer costs the user's trust) and ``reasoning`` says so;
  ``confidence`` is then ``p``, the probability that searching was needed.
- Empty or whitespace-only input: ``needs_research=False``, ``confidence=1.0``, category ``general``.
- ``fallback`` (timeout or error) is the keyword matcher, labelled as such in ``reasoning``.
- ``needs_research`` and ``category`` never contradict each other (the framework's contract): a research category
  implies true and any other false. When the two heads disagree, the calibrated ``needs_research`` head
  decides and the category becomes the most likely category on its side of the line.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from penny_slm.pipeline.modules.base import EncoderHeadModule, TurnContext
from penny_slm.results import CATEGORIES, RESEARCH_CATEGORIES, Category, EncoderOutput, NormalizedText, ResearchClassification
from penny_slm.rules.keywords import find_cue, keyword_classify
from penny_slm.rules.normalize import normalize

ARTIFACT = "research"


class ResearchClassifier(EncoderHeadModule):
    """The ``research`` module: does a message need a live search? ``predict(message)`` classifies one message on its
    own; ``fallback`` is the keyword matcher. The decision rule is in the module docstring."""

    default_artifact: ClassVar[str] = ARTIFACT
    name: ClassVar[str] = "research"
    requires: ClassVar[frozenset[str]] = frozenset({"normalized"})
    provides: ClassVar[frozenset[str]] = frozenset({"research"})

    def __init__(self, model_path: str = "", confidence_threshold: float = 0.5, max_tokens: int = 128,
                 execution_providers: tuple[str, ...] = ("CPUExecutionProvider",), intra_op_threads: int = 1) -> None:
        super().__init__(model_path, max_tokens, execution_providers, intra_op_threads)
        self.confidence_threshold = confidence_threshold

    def run(self, turn: TurnContext) -> ResearchClassification:
        """Classify the turn's normalized message."""
        return self.predict(turn.message)

    def fallback(self, turn: TurnContext, reason: str) -> ResearchClassification:
        """The keyword matcher's answer, with ``reason`` in ``reasoning``: the behaviour before the model existed."""
        return self.keyword_fallback(turn.message, reason)

    def predict(self, message: str | NormalizedText) -> ResearchClassification:
        """Classify one message (normalized first if given as text)."""
        return self.predict_batch([message])[0]

    def predict_batch(self, messages: list[str | NormalizedText]) -> list[ResearchClassification]:
        """Classify several messages in one encoder pass; empty ones get the fixed no-research answer without the model.
        With the int8 graph a batch's probabilities can differ slightly from one message at a time (the dynamic
        quantization takes its scales over the whole batch), so Penny and the evals classify one message per call."""
        self.require_loaded()
        turns = [m if isinstance(m, NormalizedText) else normalize(m) for m in messages]
        todo = [i for i, t in enumerate(turns) if t.text.strip()]
        outputs = dict(zip(todo, self.encode([turns[i].text for i in todo])))
        return [self._decide(t, outputs[i]) if i in outputs else self._empty() for i, t in enumerate(turns)]

    def keyword_fallback(self, message: str | NormalizedText, reason: str) -> ResearchClassification:
        """The keyword matcher's classification of a message, ``reason`` first in its ``reasoning``; needs no model."""
        text = message.text if isinstance(message, NormalizedText) else normalize(message).text
        base = keyword_classify(text)
        return ResearchClassification(base.needs_research, base.confidence, f"{reason}; {base.reasoning}", base.category)

    @staticmethod
    def _empty() -> ResearchClassification:
        return ResearchClassification(False, 1.0, "Empty message: nothing to look up.", "general")

    def _decide(self, turn: NormalizedText, out: EncoderOutput) -> ResearchClassification:
        p = float(self.calibrated(out.logits["research"])[1])
        model_says = p >= 0.5
        model_conf = p if model_says else 1.0 - p
        needs = model_says or model_conf < self.confidence_threshold
        category = consistent_category(np.asarray(out.logits["category"]), needs)
        label = category.replace("_", " ")
        cue = find_cue(turn.text)
        if not model_says and needs:
            confidence = p
            reasoning = (f"Unsure: p(search)={p:.2f}, confidence {model_conf:.2f} is below the "
                         f"{self.confidence_threshold:.2f} threshold, so searching to be safe (as {label}).")
        elif needs:
            confidence = p
            why = f"cue '{cue[1]}'" if cue else "no time word, but the answer can change"
            reasoning = f"Looks like {label} that depends on live information ({why}); p(search)={p:.2f}."
        else:
            confidence = 1.0 - p
            why = f"'{cue[1]}' appears but the answer doesn't depend on live data" if cue else "answerable from established knowledge"
            reasoning = f"Looks like {label}, {why}; p(search)={p:.2f}."
        if out.truncated or turn.truncated:
            reasoning += f" Input was long: only the first {self.max_tokens} tokens were read."
        return ResearchClassification(needs, round(confidence, 4), reasoning, category)

def consistent_category(category_logits: np.ndarray, needs_research: bool) -> Category:
    """The most likely category on the side of the line ``needs_research`` is on, so the two never contradict."""
    allowed = [i for i, c in enumerate(CATEGORIES) if (c in RESEARCH_CATEGORIES) == needs_research]
    return CATEGORIES[max(allowed, key=lambda i: category_logits[i])]
