"""Personality guard: enforce Penny's persona on every LLM response.

Stages (docs/architecture.md): rules (deterministic, absolute prohibitions) → tone head (``cheerleader_tone``,
scored on the rule-fixed text) → for a tone violation, first drop the sentences that are nothing but
cheerleading (``trimmed``), and only if that cannot fix it, a generative rewrite, re-checked.

The rewrite (``modules/rewriter.py``) runs under a deadline and is kept only if the rules find
nothing in it, the tone head no longer flags it and every code span survived byte for byte;
otherwise the rule-fixed text is returned. ``rewrite_status`` says which: ``rewritten``,
``discarded: <why>`` or ``skipped: <why>`` (no rewriter built, or none configured).

Degenerate output (issue 23): a looped sentence or phrase is a rule (``repeated_text``, collapsed by the rule
fix); a response that echoes the system prompt (``prompt_echo``, ``rules/echo.py``) is not fixable by editing,
so the guard returns ``ECHO_FALLBACK`` with ``rewrite_status`` ``fallback: <why>`` and logs the reason.

``confidence`` = P(the returned text is violation-free): 0 if the rules still find something (never
seen in tests), otherwise 1 − P(cheerleader) of the returned text from the calibrated tone head.
"""

from __future__ import annotations

import logging
import re
import time
from typing import ClassVar

from penny_slm.config import Persona, load_persona
from penny_slm.errors import InputError
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import EncoderHeadModule, TurnContext
from penny_slm.pipeline.modules.rewriter import Rewriter
from penny_slm.pipeline.modules.tone_screen import SCREEN_ARTIFACT, ToneScreen
from penny_slm.results import Change, GuardResult, ViolationName
from penny_slm.rules.echo import prompt_echo
from penny_slm.rules.prohibitions import CODE, detect, fix, sentence_spans

TONE_ARTIFACT = "tone"
NO_REWRITER = "skipped: no rewriter loaded (build it with: penny-slm models build); rule-fixed text returned"
LENIENT = "flagged: enforcement_level is lenient, so tone is reported, not rewritten"
SAFE_MODE = "skipped: safe mode (the kill switch is on): tone is reported, not trimmed or rewritten; rule-fixed text returned"
ECHO_FALLBACK = "Sorry, that answer came out garbled. Could you ask me again?"
"""What Penny says instead of a response that echoed its own system prompt."""
RECHECK_RESERVE_S = 0.5
"""Of the guard's time in a turn, what a rewrite leaves for the rules, the tone stage and the re-check."""
log = logging.getLogger(__name__)


SENTENCES_CHECKED = 4
"""The sentence check (issue 17): a long reply can praise the user mid-answer, outside the window the head reads. So,
for a reply longer than the window, the screen ranks its sentences, and unless it is sure the second most cheerful is
clean, the head reads the ``SENTENCES_CHECKED`` most cheerful, one call each as the trim does (``encode_each``: in a
padded batch a sentence's score would move with its neighbours). The reply scores the higher of its window and its
*second* most cheerful sentence: one warm sentence in a long reply is not cheerleading, two are. Chosen on the dev half of the held-out responses (``eval guard --real --part dev``: cheerleading precision
0.87 → 0.88, recall 0.46 → 0.60); the most cheerful sentence instead of the second found more but lost precision.
Cost: four more encoder calls, p50 about 18 ms on one thread for a 200-word reply (docs/MEASUREMENTS.md)."""


class ToneScorer(EncoderHeadModule):
    """P(cheerleader) for a response, from its window and, for a long reply, its most cheerful sentences
    (``SENTENCES_CHECKED``): the linear screen answers where it is sure the text is clean, otherwise the fine-tuned,
    calibrated ``tone`` head (``screen = None``: the head answers everything, on the window alone)."""

    default_artifact: ClassVar[str] = TONE_ARTIFACT
    screen: ToneScreen | None = None

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        """The head, and the screen when one is built (``penny-slm models build --only tone-screen``)."""
        super().load(store, version)
        if store.active_version(SCREEN_ARTIFACT) is not None:
            self.screen = ToneScreen()
            self.screen.load(store)

    def p_cheerleader(self, text: str) -> float:
        """P(cheerleading) of the text's prose (code left out): the higher of its window's and of its second most
        cheerful sentence's (``SENTENCES_CHECKED``), each the screen's answer when it is sure, else the calibrated head."""
        self.require_loaded()
        code_free = _code_free(text)
        prose = tone_window(code_free)
        if not prose:
            return 0.0
        if self.screen is None:
            return self._head([prose])[0]
        window = cleared if (cleared := self.screen.clears(prose)) is not None else self._head([prose])[0]
        ranked = self._cheeriest_sentences(code_free)
        if len(ranked) < 2:
            return window
        if (second := self.screen.clears(ranked[1])) is None:
            second = sorted(self._head(ranked), reverse=True)[1]
        return max(window, second)

    def screened(self, text: str) -> bool:
        """True if the screen answers for ``text`` (the head would not run)."""
        code_free = _code_free(text)
        prose = tone_window(code_free)
        if self.screen is None or not prose or self.screen.clears(prose) is None:
            return False
        ranked = self._cheeriest_sentences(code_free)
        return len(ranked) < 2 or self.screen.clears(ranked[1]) is not None

    def _head(self, texts: list[str]) -> list[float]:
        """The calibrated head's P(cheerleader) of each text, each scored alone (``encode_each``)."""
        return [float(self.calibrated(out.logits["tone"])[1]) for out in self.encode_each(texts)]

    def _cheeriest_sentences(self, code_free: str) -> list[str]:
        """The ``SENTENCES_CHECKED`` sentences of the reply (code replaced, ``_code_free``) the screen finds most cheerful,
        most cheerful first; none when the window is the whole reply."""
        assert self.screen is not None
        if len(code_free.split()) <= sum(TONE_WINDOW_WORDS):
            return []
        sentences = [tone_window(code_free[a:b].strip()) for a, b in sentence_spans(code_free)]
        sentences = [s for s in sentences if len(s.split()) >= 2]
        return sorted(sentences, key=self.screen.p_cheerleader, reverse=True)[:SENTENCES_CHECKED]


def _code_free(text: str) -> str:
    """The reply with code replaced by a neutral placeholder: tone lives in prose."""
    return CODE.sub(" code ", text).strip()


def tone_prose(text: str) -> str:
    """What tone is scored on: code replaced by a neutral placeholder (tone lives in prose), windowed."""
    return tone_window(_code_free(text))


MIN_KEPT = 0.6  # share of each substance sentence's content words a rewrite must keep
MIN_INFORMATIVE = 4  # content words that make a sentence substance (shorter asides may go: "Go for it.")
MAX_NEW = 0.2  # share of a rewrite's content words that may be new
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_STOPWORDS = frozenset("the and for you your are was were that this with have has had not but all can its it's "
                       "just now then than them they their there what when which who why how will would from into "
                       "over under about after again also only very more most some such other out off here each "
                       "let's i'm i'd i've you're you'll we're that's hey "
                       # intensifiers: the hype the rewrite is meant to remove (training's HYPE_WORDS)
                       "absolutely totally super incredibly literally really".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']{3,}", text.lower()) if w not in _STOPWORDS}


TONE_WINDOW_WORDS = (24, 12)
"""Words scored from the start and the end of a long response. Gushing sits in openers and closers
(the tone data is built that way, and so are real LLM replies); scoring ~45 tokens instead of 256
keeps the head near its latency budget on long answers. Praise buried mid-answer is left to the sentence check
(``SENTENCES_CHECKED``)."""


def tone_window(prose: str, head_tail: tuple[int, int] = TONE_WINDOW_WORDS) -> str:
    """The part of a long response the tone head reads: the first and last words, joined by an ellipsis (gushing sits in
    openers and closers)."""
    words = prose.split()
    head, tail = head_tail
    if len(words) <= head + tail:
        return prose
    return " ".join([*words[:head], "…", *words[-tail:]])


class PersonalityGuard:
    """The ``guard`` module: rules, tone stage, trim or rewrite, re-check (see the module docstring). ``predict(response)``
    checks one response on its own; ``fallback`` runs the rules only."""

    name: ClassVar[str] = "guard"
    requires: ClassVar[frozenset[str]] = frozenset({"response"})
    provides: ClassVar[frozenset[str]] = frozenset({"guard"})

    def __init__(self, model_path: str = "", rewriter_path: str = "rewriter", enforcement_level: str = "strict",
                 tone_threshold: float = 0.5, max_tokens: int = 256, rewrite_timeout_s: float = 5.0, *,
                 persona: Persona | None = None, execution_providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 intra_op_threads: int = 1, generator_threads: int = 2) -> None:
        """``model_path``: the tone head's artifact; ``rewriter_path``: the rewriter's ("" = rules and trim only);
        ``enforcement_level``: ``strict`` fixes tone (trim, rewrite), ``lenient`` only reports it."""
        self.persona = persona or load_persona()
        self.tone_threshold = tone_threshold
        self.enforcement_level = enforcement_level
        self.tone = ToneScorer(model_path, max_tokens, execution_providers, intra_op_threads)
        self.rewriter: Rewriter | None = (Rewriter(self.persona, n_threads=generator_threads, flags_sentence=self.flags_cheerleading,
                                                   artifact=rewriter_path) if rewriter_path else None)
        self.rewrite_timeout_s = rewrite_timeout_s

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        """The tone head (required) and the rewriter if one is built (the guard works without it)."""
        self.tone.load(store, version)
        if self.rewriter is not None and store.active_version(self.rewriter.artifact) is not None:
            self.rewriter.load(store)

    def run(self, turn: TurnContext) -> GuardResult:
        """Check and fix the turn's response (``InputError`` if the turn has none yet)."""
        if turn.response is None:
            raise InputError("the guard runs on the main LLM's response; this turn has none")
        return self.predict(turn.response, deadline=turn.deadline, safe_mode=turn.safe_mode,
                            request=turn.message.original, instructions=turn.instructions)

    def fallback(self, turn: TurnContext, reason: str) -> GuardResult:
        """The rules alone on the response: the absolute prohibitions are still fixed when the models time out or fail.
        """
        return self.rules_only(turn.response or "", reason, request=turn.message.original, instructions=turn.instructions)

    @property
    def model_version(self) -> str | None:
        """The tone model's version: the model behind the guard's decisions."""
        return self.tone.model_version

    def _rules(self, response: object, request: str = "") -> tuple[str, tuple[ViolationName, ...], tuple]:  # type: ignore[type-arg]
        if not isinstance(response, str):
            raise InputError(f"expected a str response, got {type(response).__name__}")
        hits = detect(response, self.persona, request=request)
        violations: tuple[ViolationName, ...] = tuple(dict.fromkeys(h.rule for h in hits))
        rewritten, changes = fix(response, self.persona, request=request) if hits else (response, ())
        return rewritten, violations, changes

    @staticmethod
    def echo_fallback(response: str, instructions: str) -> GuardResult | None:
        """The fallback result if ``response`` echoes ``instructions`` (the system prompt), else None."""
        if not instructions:
            return None
        echo = prompt_echo(response, instructions)
        if not echo.is_echo:
            return None
        log.warning("guard: %s; the turn falls back", echo.reason())
        return GuardResult(response, ("prompt_echo",), ECHO_FALLBACK,
                           (Change("prompt_echo", 0, len(response), response, ECHO_FALLBACK),), 1.0, f"fallback: {echo.reason()}")

    def predict(self, response: str, deadline: float | None = None, *, safe_mode: bool = False, request: str = "",
                instructions: str = "") -> GuardResult:
        """``deadline``: the monotonic time by which the guard must answer (a rewrite stops before it);
        ``safe_mode``: the kill switch is on: rules and tone head only, no trim and no rewrite;
        ``request``: the user's message (repetition it asked for is kept); ``instructions``: the system prompt
        without research notes (a response echoing it falls back)."""
        if (echoed := self.echo_fallback(response, instructions)) is not None:
            return echoed
        rewritten, violations, changes = self._rules(response, request)
        p_cheer = self.tone.p_cheerleader(rewritten)
        status = "not_needed"
        if p_cheer >= self.tone_threshold and self.enforcement_level == "lenient":
            violations, status = (*violations, "cheerleader_tone"), LENIENT
        elif p_cheer >= self.tone_threshold and safe_mode:
            violations, status = (*violations, "cheerleader_tone"), SAFE_MODE
        elif p_cheer >= self.tone_threshold:
            violations = (*violations, "cheerleader_tone")
            trimmed, p_after = self._trim(rewritten)
            if trimmed is not None:
                changes = (*changes, Change("cheerleader_tone", 0, len(rewritten), rewritten, trimmed, "trim"))
                rewritten, p_cheer, status = trimmed, p_after, "trimmed"
            elif self.rewriter is not None and self.rewriter.loaded:
                budget = self.rewrite_timeout_s if deadline is None else min(
                    self.rewrite_timeout_s, deadline - time.monotonic() - RECHECK_RESERVE_S)
                candidate, p_after, status = self._rewrite(rewritten, budget)
                if candidate is not None:
                    changes = (*changes, Change("cheerleader_tone", 0, len(rewritten), rewritten, candidate, "slm"))
                    rewritten, p_cheer = candidate, p_after
            else:
                status = NO_REWRITER
        rules_clean = not detect(rewritten, self.persona)
        confidence = round(1.0 - p_cheer, 4) if rules_clean else 0.0
        return GuardResult(response, violations, rewritten, changes, confidence, status)

    def _trim(self, text: str) -> tuple[str | None, float]:
        """(text without its cheerleading sentences, its P(cheerleader)) or (None, 1.0).

        The cheap, exact fix for the common case (gushing openers and closers around an answer): drop
        every sentence the tone scorer flags, unless it holds a number or code, and keep the result
        only if something is left and it passes the same re-check as a model rewrite."""
        pieces = [text[a:b] for a, b in sentence_spans(text)]
        keep = [p for p in pieces if _NUMBER.search(p) or CODE.search(p) or self.tone.p_cheerleader(p) < self.tone_threshold]
        if len(keep) == len(pieces) or not any(p.strip() for p in keep):
            return None, 1.0
        trimmed = "".join(keep).strip()
        problem, p_after = self._recheck(text, trimmed)
        return (None, 1.0) if problem else (trimmed, p_after)

    def _rewrite(self, text: str, budget_s: float) -> tuple[str | None, float, str]:
        """(accepted rewrite or None, its P(cheerleader), status). Every failure keeps the rule-fixed text."""
        assert self.rewriter is not None
        if budget_s <= 0:
            return None, 1.0, "skipped: no time left in the turn for a rewrite; rule-fixed text returned"
        result = self.rewriter.rewrite(text, deadline_s=budget_s)
        problem: str | None
        if result.generation.stop_reason != "eos":
            problem, p_after = f"rewrite stopped at {result.generation.stop_reason}", 1.0
        else:
            problem, p_after = self._recheck(text, result.text)
        if problem:
            log.info("guard: rewrite discarded (%s); rule-fixed text returned", problem)
            return None, 1.0, f"discarded: {problem}"
        return result.text, p_after, "rewritten"

    def rewrite_problem(self, before: str, after: str) -> str | None:
        """Why ``after`` may not replace ``before`` (None if it may): the re-check every rewrite passes."""
        return self._recheck(before, after)[0]

    def _recheck(self, before: str, after: str) -> tuple[str | None, float]:
        """(problem or None, P(cheerleader) of ``after``; 1.0 when a check fails before the tone head runs).

        Besides rules and tone, the answer must survive: every number and code span, and most content
        words of every informative sentence the tone head does not flag (the substance: a multi-part
        answer cut to one part fails here); and the rewrite may not bring in much that was not there
        (a small model's failure mode is inventing a new answer)."""
        if not after.strip():
            return "empty rewrite", 1.0
        if CODE.findall(after) != CODE.findall(before):
            return "rewrite changed a code span", 1.0
        if not set(_NUMBER.findall(before)) <= set(_NUMBER.findall(after)):
            return "rewrite lost a number", 1.0
        kept = _content_words(after)
        for sentence in _SENTENCE_END.split(CODE.sub(" ", before)):
            needed = _content_words(sentence)
            if len(needed) >= MIN_INFORMATIVE and len(needed & kept) / len(needed) < MIN_KEPT \
                    and self.tone.p_cheerleader(sentence) < self.tone_threshold:
                return f"rewrite dropped content ({len(needed & kept)}/{len(needed)} words of: {sentence.strip()[:60]})", 1.0
        invented = kept - _content_words(before)
        if len(invented) > max(2, MAX_NEW * len(kept)):
            return f"rewrite added content ({', '.join(sorted(invented)[:4])})", 1.0
        hits = detect(after, self.persona)
        if hits:
            return f"rewrite has {hits[0].rule}", 1.0
        p_after = self.tone.p_cheerleader(after)
        if p_after >= self.tone_threshold:
            return f"rewrite still reads as cheerleading (p={p_after:.2f})", p_after
        return None, p_after

    def accepts_rewrite(self, before: str, after: str) -> bool:
        """Whether a trim or rewrite of ``before`` would be kept (see ``rewrite_problem`` for why not)."""
        return self.rewrite_problem(before, after) is None

    def flags_cheerleading(self, text: str) -> bool:
        """Whether the tone stage flags ``text`` as cheerleading at the configured ``tone_threshold``."""
        return self.tone.p_cheerleader(text) >= self.tone_threshold

    def rules_only(self, response: str, reason: str, *, request: str = "", instructions: str = "") -> GuardResult:
        """Rules only (no model involved): the guard's floor when the tone head times out or fails."""
        if (echoed := self.echo_fallback(response, instructions)) is not None:
            return echoed
        rewritten, violations, changes = self._rules(response, request)
        rules_clean = not detect(rewritten, self.persona)
        return GuardResult(response, violations, rewritten, changes, 1.0 if rules_clean else 0.0,
                           f"skipped: {reason}; tone not checked")
