"""The generative rewriter: SmolLM2 fine-tuned into Penny's voice, with prohibitions banned while decoding.

Used by the guard for soft (tone) violations that remain after the rule fixes, and by
``penny-slm rewrite``. While decoding, :class:`ProhibitionMask` makes it impossible to emit ``*``,
more than the persona's ``!`` budget, or a coffee term, so a rewrite cannot reintroduce an absolute
prohibition. The guard still re-checks every rewrite (rules, tone head, code spans) before using it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from penny_slm.config import Persona, load_persona
from penny_slm.errors import InputError, NotLoadedError
from penny_slm.pipeline.adapters.base import Generation, Message
from penny_slm.pipeline.adapters.onnx_causal import OnnxCausalLM
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.rules.prohibitions import CODE, coffee_match

REWRITER_ARTIFACT = "rewriter"
SYSTEM_PROMPT = "Rewrite in Penny's voice: dry, no hype, keep every fact and all code."
"""The system turn of every rewrite prompt; training (``training/rewriter.py``) uses the same string."""
_BULLET = re.compile(r"(?m)^\* ")
MAX_CANDIDATES = 8  # coffee check: how many next-best tokens to try before giving up on the position


class ProhibitionMask:
    """A ``LogitsHook``: ``*`` never, ``!`` only within the persona's budget (a token may hold several),
    no token that completes a coffee term."""

    def __init__(self, generator: OnnxCausalLM, persona: Persona) -> None:
        tokenizer = generator.tokenizer
        self.persona = persona
        self._decode = tokenizer.decode
        vocab = tokenizer.get_vocab()
        self._pieces = {i: t.replace("Ġ", " ").replace("Ċ", "\n") for t, i in vocab.items()}
        self.star_ids = np.array([i for t, i in vocab.items() if "*" in t or "∗" in t], dtype=np.int64)
        self.bullet_id = vocab.get("*", -1)
        self.bullets = False  # set per call: only a source with "* " bullets may get them back
        bangs = {i: t.count("!") + t.count("！") for t, i in vocab.items()}
        self.bang_ids = np.array([i for i, n in bangs.items() if n], dtype=np.int64)
        self._bang_counts = np.array([bangs.get(i, 0) for i in range(max(bangs) + 1)], dtype=np.int64)

    def __call__(self, out_ids: list[int], logits: np.ndarray) -> None:
        text = self._decode(out_ids) if out_ids else ""
        if _inside_code(text):  # code is copied, never policed: `*ptr`, `!=`, COFFEE_TABLE
            return
        if self.bullets and text.endswith("\n"):  # a lone "*" opening a line is a markdown bullet
            logits[self.star_ids[self.star_ids != self.bullet_id]] = -np.inf
        else:
            logits[self.star_ids] = -np.inf
        prose = CODE.sub("", text)
        budget = self.persona.max_exclamations - prose.count("!") - prose.count("！")
        over = self.bang_ids[self._bang_counts[self.bang_ids] > budget]  # "!!" is one token: count, not presence
        logits[over] = -np.inf
        tail = text[-48:]
        for _ in range(MAX_CANDIDATES):
            token = int(logits.argmax())
            if not coffee_match(tail + self._pieces.get(token, ""), self.persona, since=len(tail)):
                return
            logits[token] = -np.inf


def _inside_code(text: str) -> bool:
    """True while the text so far has an open ``` block or an open inline `code` span."""
    if text.count("```") % 2:
        return True
    return text.replace("```", "").count("`") % 2 == 1


@dataclass(frozen=True, slots=True)
class Rewrite:
    text: str
    generation: Generation


class Rewriter:
    """Loads the ``rewriter`` artifact from the registry (checksums verified) and rewrites one response."""

    def __init__(self, persona: Persona | None = None, n_threads: int = 2, max_tokens: int = 200) -> None:
        self.persona = persona or load_persona()
        self.n_threads = n_threads
        self.max_tokens = max_tokens
        self.generator: OnnxCausalLM | None = None
        self.mask: ProhibitionMask | None = None
        self.model_version: str | None = None

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        artifact = store.load(REWRITER_ARTIFACT, version)
        self.load_dir(artifact.path, artifact.manifest.version)

    def load_dir(self, path: Path, version: str) -> None:
        self.generator = OnnxCausalLM(path, n_threads=self.n_threads, name=f"{REWRITER_ARTIFACT} {version}")
        self.generator.load()
        self.mask = ProhibitionMask(self.generator, self.persona)
        self.model_version = version

    @property
    def loaded(self) -> bool:
        return self.generator is not None

    def rewrite(self, response: str, deadline_s: float = 5.0) -> Rewrite:
        """Penny-voice rewrite of ``response``; stops at ``deadline_s`` (the caller then discards a cut-off text)."""
        if not isinstance(response, str):
            raise InputError(f"expected a str response, got {type(response).__name__}")
        if self.generator is None:
            raise NotLoadedError("Rewriter used before load(); build it with: penny-slm models build")
        assert self.mask is not None
        self.mask.bullets = bool(_BULLET.search(response))
        messages = [Message("system", SYSTEM_PROMPT), Message("user", response)]
        generation = self.generator.chat(messages, max_tokens=self.max_tokens, deadline_s=deadline_s, logits_hook=self.mask)
        return Rewrite(generation.text.strip(), generation)
