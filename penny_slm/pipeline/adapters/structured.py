"""JSON output from any ``Generator``: constrained decoding where the runtime allows it, then parse,
validate and retry once.

On the local ONNX runtime (:class:`OnnxCausalLM`) :class:`JsonMask` constrains decoding itself: at
every step only tokens that keep the output a prefix of ``{"key": value, ...}`` (the required keys in
order, each value of its type) may be chosen, and once the object is closed only a stop token may
follow. The base SmolLM2, asked for a haiku, still returns the object. HTTP endpoints cannot take a
logit mask, so there the fallback is one retry that shows the model its own output and what was
wrong with it. Both paths end in the same validation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any, Literal

import numpy as np
from tokenizers import Tokenizer

from penny_slm.errors import GenerationError, InputError
from penny_slm.pipeline.adapters.base import Generator, Message
from penny_slm.pipeline.adapters.onnx_causal import OnnxCausalLM

_BAD, _MORE = -1, -2  # an element is invalid / the text ended inside it (a valid prefix so far)
MAX_NUMBER_CHARS = 12
MAX_STRING_CHARS = 40  # bounds keep a small model that loops ("jerseys", "jerseys", ...) inside max_tokens
MAX_LIST_ITEMS = 6  # and list items must differ
TOP_K = 32  # best-scored tokens tried first; then every single printable character, which always continues
_NUMBER_DONE = {float: re.compile(r"-?(0|[1-9]\d*)(\.\d+)?"), int: re.compile(r"-?(0|[1-9]\d*)")}
_NUMBER_SO_FAR = {float: re.compile(r"-?((0|[1-9]\d*)(\.\d*)?)?"), int: re.compile(r"-?(0|[1-9]\d*)?")}


def _literal(text: str, i: int, literal: str) -> int:
    rest = text[i: i + len(literal)]
    if not literal.startswith(rest):
        return _BAD
    return i + len(literal) if len(rest) == len(literal) else _MORE


def _string(text: str, i: int) -> int:
    """A JSON string on one line (no control characters), standard escapes only, at most MAX_STRING_CHARS."""
    if i == len(text):
        return _MORE
    if text[i] != '"':
        return _BAD
    start = i = i + 1
    while i < len(text):
        if i - start >= MAX_STRING_CHARS and text[i] != '"':  # an escape may step over the bound
            return _BAD
        char = text[i]
        if char == '"':
            return i + 1
        if char == "\\":
            if i + 1 == len(text):
                return _MORE
            if text[i + 1] not in '"\\/bfnrt':
                return _BAD
            i += 2
        elif char < " ":
            return _BAD
        else:
            i += 1
    return _MORE


def _number(text: str, i: int, kind: type) -> int:
    end = i
    while end < len(text) and text[end] in "-.0123456789":
        end += 1
    run = text[i:end]
    if len(run) > MAX_NUMBER_CHARS:
        return _BAD
    if end == len(text):
        return _MORE if _NUMBER_SO_FAR[kind].fullmatch(run) else _BAD
    return end if _NUMBER_DONE[kind].fullmatch(run) else _BAD


def _bool(text: str, i: int) -> int:
    if i == len(text):
        return _MORE
    return _literal(text, i, "true" if text[i] == "t" else "false")


def _string_list(text: str, i: int) -> int:
    """A list of at most MAX_LIST_ITEMS distinct strings."""
    i = _literal(text, i, "[")
    if i >= 0 and text[i: i + 1] == "]":
        return i + 1
    items: set[str] = set()
    while i >= 0:
        start, i = i, _string(text, i)
        if i < 0:
            return i
        if text[start:i] in items:
            return _BAD
        if i == len(text):
            return _MORE
        items.add(text[start:i])
        if text[i] == "]":
            return i + 1
        if len(items) == MAX_LIST_ITEMS:
            return _BAD  # every valid prefix must have a continuation, so the full list allows only "]"
        i = _literal(text, i, ", ")
    return i


VALUE_GRAMMARS: dict[type, Callable[[str, int], int]] = {str: _string, float: partial(_number, kind=float), int: partial(_number, kind=int), bool: _bool,
                  list: _string_list}
"""The value types a constrained object may ask for; ``list`` means a list of strings."""


def json_prefix(text: str, required: dict[str, type]) -> Literal["bad", "partial", "complete"]:
    """Where ``text`` stands against ``{"k1": v1, "k2": v2}`` (keys in order, canonical spacing)."""
    i = 0
    for n, (key, kind) in enumerate(required.items()):
        i = _literal(text, i, ("{" if n == 0 else ", ") + json.dumps(key) + ": ")
        if i >= 0:
            i = VALUE_GRAMMARS[kind](text, i)
        if i < 0:
            return "partial" if i == _MORE else "bad"
    i = _literal(text, i, "{}" if not required else "}")
    if i < 0:
        return "partial" if i == _MORE else "bad"
    return "complete" if i == len(text) else "bad"


class JsonMask:
    """A ``LogitsHook`` that lets the model write only the requested JSON object, then stop.

    Among the tokens that keep the text a valid prefix it takes the best-scored, so the model still
    chooses every value; only the structure is forced."""

    def __init__(self, tokenizer: Tokenizer, required: dict[str, type], stop_ids: frozenset[int]) -> None:
        unsupported = sorted(k for k, kind in required.items() if kind not in VALUE_GRAMMARS)
        if unsupported:
            kinds = ", ".join(t.__name__ for t in VALUE_GRAMMARS)
            raise InputError(f"cannot constrain JSON keys {unsupported}: value types must be one of {kinds}")
        self.required = required
        self.stop_ids = stop_ids
        self._decode = tokenizer.decode
        self._pieces, self._single_chars = _vocab_pieces(tokenizer)

    def _piece(self, token: int) -> str:
        if token not in self._pieces:
            self._pieces[token] = self._decode([token])
        return self._pieces[token]

    def __call__(self, out_ids: list[int], logits: np.ndarray) -> None:
        text = self._decode(out_ids) if out_ids else ""
        chosen = min(self.stop_ids) if json_prefix(text, self.required) == "complete" else self._continuation(text, logits)
        logits[:] = -np.inf
        logits[chosen] = 0.0

    def _continuation(self, text: str, logits: np.ndarray) -> int:
        top = np.argpartition(-logits, TOP_K)[:TOP_K]
        for candidates in (top[np.argsort(-logits[top])], self._single_chars[np.argsort(-logits[self._single_chars])]):
            for token in candidates.tolist():
                piece = self._piece(token)
                if piece and token not in self.stop_ids and json_prefix(text + piece, self.required) != "bad":
                    return int(token)
        raise GenerationError(f"no token continues the JSON after {text[-40:]!r}")


@lru_cache(maxsize=8)
def _vocab_pieces(tokenizer: Tokenizer) -> tuple[dict[int, str], np.ndarray]:
    """Per tokenizer, not per call (~50 ms for SmolLM2): a cache of decoded token pieces, seeded with
    the tokens that decode to one printable character (the fallback that always continues)."""
    single = [i for t, i in tokenizer.get_vocab().items() if len(t) == 1 or t == "Ġ"]
    pieces = {i: tokenizer.decode([i]) for i in single}
    return pieces, np.array([i for i in single if len(p := pieces[i]) == 1 and " " <= p <= "~"], np.int64)


def parse_json_object(text: str, required: dict[str, type]) -> tuple[dict[str, Any] | None, str]:
    """(the object, "") or (None, what is wrong with ``text``): the check both decoding paths end in."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None, "no JSON object found"
    try:
        obj = json.loads(text[start: end + 1])
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg}"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    for key, kind in required.items():
        if key not in obj:
            return None, f"missing key '{key}'"
        value = obj[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, kind)
        if not ok:
            return None, f"'{key}' must be {kind.__name__}, got {type(value).__name__}"
    return obj, ""


def chat_json(generator: Generator, messages: list[Message], required: dict[str, type], *,
              max_tokens: int = 200, deadline_s: float = 10.0) -> dict[str, Any]:
    """A dict with at least the ``required`` keys of the given types, or ``GenerationError``.

    Constrained by :class:`JsonMask` on the local ONNX runtime; elsewhere validated and retried once."""
    hook = JsonMask(generator.tokenizer, required, generator.stop_ids) if isinstance(generator, OnnxCausalLM) else None
    problem = ""
    for _ in range(2):
        generation = generator.chat(messages, max_tokens=max_tokens, deadline_s=deadline_s, logits_hook=hook)
        obj, problem = parse_json_object(generation.text, required)
        if obj is not None:
            return obj
        if generation.stop_reason != "eos":
            problem = f"{problem} (generation stopped at {generation.stop_reason})"
        keys = ", ".join(f'"{k}" ({t.__name__})' for k, t in required.items())
        messages = [*messages, Message("assistant", generation.text),
                    Message("user", f"That was not usable ({problem}). Reply with only one JSON object with keys {keys}.")]
    raise GenerationError(f"no valid JSON after one retry: {problem}")
