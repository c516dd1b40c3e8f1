"""Local causal LM on onnxruntime: greedy decoding with a KV cache, no torch at run time.

Folder layout (written by ``export/causal.py``): ``model.onnx`` with ``past_key_values.*`` inputs,
``tokenizer.json``, the model's own chat template (``chat_template.jinja``, else the ``chat_template`` of
``tokenizer_config.json``) and ``config.json``.
Speed and memory: docs/MEASUREMENTS.md (generative runtimes in the bench).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from penny_slm.errors import ModelNotFoundError, NotLoadedError
from penny_slm.pipeline.adapters.base import Drafter, Generation, LogitsHook, Message, StopReason
from penny_slm.pipeline.adapters.onnx_encoder import available_providers

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
MIN_DRAFT_MARGIN = 2.0
"""A position whose top two logits are closer than this, in a pass that fed proposals, is decided again
in a one-token pass: the int8 model quantizes activations per fed chunk (its logits move by 2-8 with
what is fed alongside), which flips near-ties; measured in docs/MEASUREMENTS.md."""


class OnnxCausalLM:
    """One instance per model folder; ``load`` is the only I/O. Not thread-safe: one generation at a time."""

    def __init__(self, path: str | Path, *, n_threads: int = 2, max_prompt_tokens: int = 1024,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",), name: str = "") -> None:
        self.path = Path(path)
        self.n_threads = n_threads
        self.max_prompt_tokens = max_prompt_tokens
        self.providers = providers
        self.name = name or self.path.name
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._template: Any = None
        self._stop_ids: set[int] = set()
        self._special: list[str] = []
        self._kv: tuple[int, int, int] = (0, 0, 0)  # layers, kv heads, head dim

    def load(self) -> None:
        """Open the ONNX graph, tokenizer and chat template; ``ModelNotFoundError`` names any missing file."""
        missing = [f for f in ("model.onnx", "tokenizer.json", "config.json") if not (self.path / f).is_file()]
        if missing:
            raise ModelNotFoundError(f"{self.path} lacks {', '.join(missing)}; build it with: penny-slm models build")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.n_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.path / "model.onnx"), options,
                                             providers=available_providers(self.providers))
        self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        config = json.loads((self.path / "config.json").read_text())
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        self._kv = (config["num_hidden_layers"], config["num_key_value_heads"], head_dim)
        template_file = self.path / "chat_template.jinja"
        source = template_file.read_text() if template_file.is_file() else json.loads(
            (self.path / "tokenizer_config.json").read_text()).get("chat_template")
        if not source:
            raise ModelNotFoundError(f"{self.path} has no chat template (chat_template.jinja or tokenizer_config.json)")
        # a model folder's template is code from outside: render it sandboxed (no attribute access to internals)
        self._template = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True).from_string(source)
        self._special = sorted({t.content for t in self._tokenizer.get_added_tokens_decoder().values() if t.special}, key=len, reverse=True)
        self._stop_ids = {i for t in STOP_TOKENS if (i := self._tokenizer.token_to_id(t)) is not None}
        self._stop_ids.add(int(config.get("eos_token_id", 2)))

    @property
    def tokenizer(self) -> Tokenizer:
        """The loaded tokenizer; ``NotLoadedError`` before ``load()``."""
        if self._tokenizer is None:
            raise NotLoadedError(f"{self.name}: call load() first")
        return self._tokenizer

    @property
    def stop_ids(self) -> frozenset[int]:
        """Token ids that end a generation (the chat template's end-of-turn and the model's EOS)."""
        if not self._stop_ids:
            raise NotLoadedError(f"{self.name}: call load() first")
        return frozenset(self._stop_ids)

    def prompt(self, messages: list[Message]) -> str:
        """The chat template rendered over ``messages``. Special-token strings inside a message
        (``<|im_start|>system`` in a user's text or an LLM response) are removed first: only the
        template may open or close a turn."""
        if self._template is None:
            raise NotLoadedError(f"{self.name}: call load() first")
        return str(self._template.render(messages=[{"role": m.role, "content": self.strip_special(m.content)} for m in messages],
                                         add_generation_prompt=True))

    def strip_special(self, text: str) -> str:
        """``text`` without special-token strings (repeated: removing one must not join the halves of another)."""
        while any(token in text for token in self._special):
            for token in self._special:
                text = text.replace(token, "")
        return text

    def chat(self, messages: list[Message], *, max_tokens: int = 160, deadline_s: float = 10.0,
             logits_hook: LogitsHook | None = None, draft: Drafter | None = None) -> Generation:
        """Fit the messages into the context, apply the chat template, generate (with prompt-lookup drafts if given)."""
        return self.complete(self.prompt(self.fit(messages)), max_tokens=max_tokens, deadline_s=deadline_s,
                             logits_hook=logits_hook, draft=draft)

    def fit(self, messages: list[Message]) -> list[Message]:
        """``messages`` whose rendered prompt fits ``max_prompt_tokens``: the middle of the longest non-system
        message is cut (marked " … "), so the system prompt, the instruction and the end of the text survive
        (cutting the head of the prompt would drop the system prompt first)."""
        for _ in range(3):
            over = len(self.tokenizer.encode(self.prompt(messages), add_special_tokens=False).ids) - self.max_prompt_tokens
            if over <= 0:
                return messages
            longest = max((i for i, m in enumerate(messages) if m.role != "system"), key=lambda i: len(messages[i].content), default=None)
            if longest is None:
                return messages
            ids = self.tokenizer.encode(messages[longest].content, add_special_tokens=False).ids
            keep = max(0, len(ids) - over - 8)
            content = self.tokenizer.decode(ids[: keep // 2]) + " … " + self.tokenizer.decode(ids[len(ids) - (keep - keep // 2):])
            messages = [*messages[:longest], Message(messages[longest].role, content), *messages[longest + 1:]]
        return messages

    def complete(self, prompt: str, *, max_tokens: int = 160, deadline_s: float = 10.0,
                 logits_hook: LogitsHook | None = None, draft: Drafter | None = None) -> Generation:
        """Greedy decoding until a stop token, ``max_tokens`` or ``deadline_s`` seconds, whichever comes first.
        A raw prompt longer than ``max_prompt_tokens`` keeps its end (``chat`` fits messages before that).

        With ``draft`` (prompt-lookup decoding): each forward pass also feeds the tokens ``draft`` proposes
        after the output so far, and keeps those the model (after ``logits_hook``) would have chosen
        itself, plus the model's own token where they part. Every kept token is the greedy choice given
        the tokens before it. The int8 model's logits depend a little on what is fed with them, so the
        prompt pass and any close call (``MIN_DRAFT_MARGIN``) are run alone, as they would be without drafts."""
        if self._session is None:
            raise NotLoadedError(f"{self.name}: call load() first")
        start = time.perf_counter()
        ids = self.tokenizer.encode(prompt, add_special_tokens=False).ids[-self.max_prompt_tokens:]
        layers, heads, dim = self._kv
        past = {f"past_key_values.{i}.{kind}": np.zeros((1, heads, 0, dim), np.float32)
                for i in range(layers) for kind in ("key", "value")}
        pending, position, out_ids = ids, 0, list[int]()  # pending: fed next, not yet in the cache
        first_token_s, reason, passes, alone = 0.0, "max_tokens", 0, False
        while len(out_ids) < max_tokens and reason == "max_tokens":
            passes += 1
            # the prompt pass, and a close call, are fed alone: proposals fed with them change the int8 numerics
            proposed = draft(out_ids)[: max_tokens - len(out_ids) - 1] if draft is not None and out_ids and not alone else []
            step_ids = pending + proposed
            n = len(step_ids)
            feeds = {"input_ids": np.array([step_ids], np.int64),
                     "attention_mask": np.ones((1, position + n), np.int64),
                     "position_ids": np.arange(position, position + n, dtype=np.int64)[None, :], **past}
            logits, *presents = self._session.run(None, feeds)
            kept, alone = 0, False  # kept: proposed tokens the model agreed with
            for row in range(len(pending) - 1, n):
                next_logits = np.array(logits[0, row], dtype=np.float32)
                if logits_hook is not None:
                    logits_hook(out_ids, next_logits)
                if proposed and _margin(next_logits) < MIN_DRAFT_MARGIN:
                    alone = True  # decide this position in a one-token pass, as without drafts
                    break
                token = int(next_logits.argmax())
                if not first_token_s:
                    first_token_s = time.perf_counter() - start
                if token in self._stop_ids:
                    reason = "eos"
                    break
                out_ids.append(token)
                if len(out_ids) >= max_tokens:
                    break
                if row + 1 < n and token == step_ids[row + 1]:
                    kept += 1
                    continue
                break
            if reason == "max_tokens" and time.perf_counter() - start > deadline_s:
                reason = "deadline"
            cached = position + len(pending) + kept - alone  # drop the cache of rejected proposals (and a close call's token)
            past = {name: value[:, :, :cached] for name, value in zip(past, presents)}
            position, pending = cached, out_ids[-1:]
        stop: StopReason = reason  # type: ignore[assignment]
        return Generation(self.tokenizer.decode(out_ids), len(out_ids), first_token_s,
                          time.perf_counter() - start, stop, self.name, passes)


def _margin(logits: np.ndarray) -> float:
    """Top logit minus the runner-up (``inf`` when only one token is allowed)."""
    second, first = np.partition(logits, -2)[-2:]
    return float(first - second)
