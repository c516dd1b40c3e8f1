"""The generative rewriter: SmolLM2 fine-tuned into Penny's voice, with prohibitions banned while decoding.

Used by the guard for soft (tone) violations that remain after the rule fixes, and by
``penny-slm rewrite``. While decoding, :class:`CallMask` makes it impossible to emit ``*``,
more than the persona's ``!`` budget, or a coffee term, so a rewrite cannot reintroduce an absolute
prohibition. The guard still re-checks every rewrite (rules, tone head, code spans) before using it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from penny_slm.config import Persona, load_persona
from penny_slm.errors import InputError, NotLoadedError
from penny_slm.pipeline.adapters.base import Generation, Message
from penny_slm.pipeline.adapters.onnx_causal import OnnxCausalLM
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.rules.prohibitions import CODE, coffee_match, sentence_spans

REWRITER_ARTIFACT = "rewriter"
SYSTEM_PROMPT = "Rewrite in Penny's voice: dry, no hype, keep every fact and all code."
"""The system turn of every rewrite prompt; training (``training/rewriter.py``) uses the same string."""
_BULLET = re.compile(r"(?m)^\* ")
COPY_BONUS = 3.0
"""Logit bonus for continuing the copy of the source (``CopyBias``). Chosen on guard_test rows that are
not in the rewriter's test split (0 / 3 / 6: clean unchanged 0.76 / 0.91 / 0.93, pass 0.86 / 0.86 / 0.83)."""
DRAFT_TOKENS = 8
"""Source tokens proposed per forward pass (prompt-lookup decoding; 0 turns it off)."""
MAX_CANDIDATES = 8  # coffee check: how many next-best tokens to try before giving up on the position


class ProhibitionMask:
    """A model's ban tables: the ``*`` tokens, the ``!`` count of every token, the decoded pieces used to spot a
    coffee term. Built once per loaded model and shared by every call; the per-call state (the source being
    copied, whether bullets are allowed) lives in the :class:`CallMask` that :meth:`bind` returns, so two turns
    rewriting at once never see each other's text."""

    def __init__(self, generator: OnnxCausalLM, persona: Persona) -> None:
        tokenizer = generator.tokenizer
        self.persona = persona
        self.decode = tokenizer.decode
        vocab = tokenizer.get_vocab()
        self.pieces = {i: t.replace("Ġ", " ").replace("Ċ", "\n") for t, i in vocab.items()}
        self.star_ids = np.array([i for t, i in vocab.items() if "*" in t or "∗" in t], dtype=np.int64)
        self.bullet_id = vocab.get("*", -1)
        bangs = {i: t.count("!") + t.count("！") for t, i in vocab.items()}
        self.bang_ids = np.array([i for i, n in bangs.items() if n], dtype=np.int64)
        self.bang_counts = np.array([bangs.get(i, 0) for i in range(max(bangs) + 1)], dtype=np.int64)

    def bind(self, copy: CopyBias | None = None, *, bullets: bool = False) -> CallMask:
        """The ``LogitsHook`` for one generation: ``copy`` (if any) is applied first; ``bullets``: the source has
        ``* `` bullets, so a lone ``*`` opening a line may come back."""
        return CallMask(self, copy, bullets)


class CallMask:
    """A ``LogitsHook``: ``*`` never, ``!`` only within the persona's budget (a token may hold several),
    no token that completes a coffee term. With ``copy`` it first applies the copy bonus, and the token that
    continues copying the (rule-fixed) source is exempt from the ``*`` and coffee bans: ``**bold**`` and
    CoffeeScript passed the rules there, so copying them reintroduces nothing."""

    def __init__(self, tables: ProhibitionMask, copy: CopyBias | None, bullets: bool) -> None:
        self.tables = tables
        self.copy = copy
        self.bullets = bullets

    def __call__(self, out_ids: list[int], logits: np.ndarray) -> None:
        t = self.tables
        copying = self.copy.apply(out_ids, logits) if self.copy is not None else []
        text = t.decode(out_ids) if out_ids else ""
        if _inside_code(text):  # code is copied, never policed: `*ptr`, `!=`, COFFEE_TABLE
            return
        kept = logits[copying].copy()  # copying the rule-fixed source (**bold**, CoffeeScript) reintroduces nothing
        if self.bullets and text.endswith("\n"):  # a lone "*" opening a line is a markdown bullet
            logits[t.star_ids[t.star_ids != t.bullet_id]] = -np.inf
        else:
            logits[t.star_ids] = -np.inf
        logits[copying] = kept
        prose = CODE.sub("", text)
        budget = t.persona.max_exclamations - prose.count("!") - prose.count("！")
        over = t.bang_ids[t.bang_counts[t.bang_ids] > budget]  # "!!" is one token: count, not presence
        logits[over] = -np.inf
        tail = text[-48:]
        for _ in range(MAX_CANDIDATES):
            token = int(logits.argmax())
            if token in copying or not coffee_match(tail + t.pieces.get(token, ""), t.persona, since=len(tail)):
                return
            logits[token] = -np.inf


@dataclass(frozen=True, slots=True)
class CopyBias:
    """Adds ``bonus`` to the source token continuing the copy in progress (``CallMask`` applies it); one per call.

    A rewrite is a minimal edit: most of its tokens are the source's, in order. The fine-tuned model
    still drops short clean openers and closers ("Yes,", "Good.") it was not sure about; a small bonus
    on "the next source token after the longest suffix of the output found in the source" (the
    prompt-lookup match) tips those near-ties back to copying, while confident deletions of hype
    outweigh it. Before the first token the source's first token is the continuation. Source
    positions in ``unboosted`` (the sentences the tone scorer flags) never get the bonus: there the
    bonus would only tip the model towards keeping hype it was unsure about.
    """

    bonus: float
    source: tuple[int, ...] = ()
    unboosted: frozenset[int] = frozenset()
    max_match: int = 8

    def continuations(self, out_ids: list[int]) -> tuple[list[int], list[int]]:
        """(every token continuing the copy, those of them that get the bonus)."""
        source = list(self.source)
        positions = [j for j in copy_positions(source, out_ids, self.max_match) if j < len(source)]
        boosted = {source[j] for j in positions if j not in self.unboosted}
        return sorted({source[j] for j in positions}), sorted(boosted)

    def apply(self, out_ids: list[int], logits: np.ndarray) -> list[int]:
        """Add the bonus to the boosted continuations in ``logits``; returns every continuation."""
        tokens, boosted = self.continuations(out_ids)
        logits[boosted] += self.bonus
        return tokens

    def draft(self, out_ids: list[int], n: int) -> list[int]:
        """The next ``n`` source tokens after the first copy position: prompt-lookup decoding's proposal."""
        source = list(self.source)
        positions = copy_positions(source, out_ids, self.max_match)
        return source[positions[0]:positions[0] + n] if positions else []


def copy_positions(source: list[int], out_ids: list[int], max_match: int = 8) -> list[int]:
    """Where in ``source`` the copy in progress continues: the indices right after each occurrence of the
    longest suffix of ``out_ids`` (at most ``max_match`` tokens) found in ``source``; ``[0]`` before the
    first token, ``[]`` when no suffix occurs. An index may be ``len(source)``: the copy reached the end."""
    if not source:
        return []
    if not out_ids:
        return [0]
    for k in range(min(max_match, len(out_ids)), 0, -1):
        tail = out_ids[-k:]
        found = [j for j in range(k, len(source) + 1) if source[j - k:j] == tail]
        if found:
            return found
    return []


def flagged_positions(text: str, offsets: list[tuple[int, int]], flags: Callable[[str], bool]) -> frozenset[int]:
    """Indices of the tokens whose last character (by ``offsets``) lies in a sentence ``flags`` flags: the
    last, because a token such as " Use" carries the space that ends the sentence before it."""
    flagged = [(a, b) for a, b in sentence_spans(text) if flags(text[a:b])]
    return frozenset(i for i, (_, end) in enumerate(offsets) if any(a < end <= b for a, b in flagged))


def _inside_code(text: str) -> bool:
    """True while the text so far has an open ``` block or an open inline `code` span."""
    if text.count("```") % 2:
        return True
    return text.replace("```", "").count("`") % 2 == 1


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A rewritten response with the generation that produced it (tokens, timings, stop reason)."""
    text: str
    generation: Generation


class Rewriter:
    """Loads the ``rewriter`` artifact from the registry (checksums verified) and rewrites one response.

    Safe to share between concurrent turns: every call builds its own :class:`CopyBias` and :class:`CallMask`;
    the loaded model and the ban tables are read-only (onnxruntime sessions take concurrent runs)."""

    def __init__(self, persona: Persona | None = None, n_threads: int = 2, max_tokens: int = 200,
                 copy_bonus: float = COPY_BONUS, flags_sentence: Callable[[str], bool] | None = None,
                 draft_tokens: int = DRAFT_TOKENS, artifact: str = REWRITER_ARTIFACT) -> None:
        self.persona = persona or load_persona()
        self.artifact = artifact
        self.flags_sentence = flags_sentence  # the guard's tone scorer: its flagged sentences get no copy bonus
        self.n_threads = n_threads
        self.max_tokens = max_tokens
        self.copy_bonus = copy_bonus
        self.draft_tokens = draft_tokens
        self.generator: OnnxCausalLM | None = None
        self.mask: ProhibitionMask | None = None
        self.model_version: str | None = None

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        """Load the active (or the named) rewriter version from the registry, checksums verified."""
        artifact = store.load(self.artifact, version)
        self.load_dir(artifact.path, artifact.manifest.version)

    def load_dir(self, path: Path, version: str) -> None:
        """Load a rewriter from a folder as ``version``; ``load`` calls it once the registry has verified the files."""
        self.generator = OnnxCausalLM(path, n_threads=self.n_threads, name=f"{self.artifact} {version}")
        self.generator.load()
        self.mask = ProhibitionMask(self.generator, self.persona)
        self.model_version = version

    @property
    def loaded(self) -> bool:
        """Whether a model is loaded (the guard skips rewriting when it is not)."""
        return self.generator is not None

    def rewrite(self, response: str, deadline_s: float = 5.0, *, draft_tokens: int | None = None) -> Rewrite:
        """Penny-voice rewrite of ``response``; stops at ``deadline_s`` (the caller then discards a cut-off text).
        ``draft_tokens`` overrides the prompt-lookup draft length for this call (0: one token per pass)."""
        if not isinstance(response, str):
            raise InputError(f"expected a str response, got {type(response).__name__}")
        if self.generator is None or self.mask is None:
            raise NotLoadedError("Rewriter used before load(); build it with: penny-slm models build")
        response = self.generator.strip_special(response)
        encoding = self.generator.tokenizer.encode(response, add_special_tokens=False)
        unboosted = (flagged_positions(response, encoding.offsets, self.flags_sentence)
                     if self.flags_sentence is not None else frozenset())
        copy = CopyBias(self.copy_bonus, tuple(encoding.ids), unboosted)
        hook = self.mask.bind(copy, bullets=bool(_BULLET.search(response)))
        n_draft = self.draft_tokens if draft_tokens is None else draft_tokens
        draft = functools.partial(copy.draft, n=n_draft) if n_draft else None
        messages = [Message("system", SYSTEM_PROMPT), Message("user", response)]
        generation = self.generator.chat(messages, max_tokens=self.max_tokens, deadline_s=deadline_s,
                                         logits_hook=hook, draft=draft)
        return Rewrite(generation.text.strip(), generation)
