"""JSON output from any ``Generator``: constrained decoding where the runtime allows it, then parse,
validate and retry once.

On the local ONNX runtime (:class:`OnnxCausalLM`) :class:`JsonMask` constrains decoding itself: at
every step only tokens that keep the output a prefix of ``{"key": value, ...}`` (the required keys in
order, each value of its type, a field with a fixed vocabulary one of its values) may be chosen, and
once the object is closed only a stop token may follow. The mask also knows the token budget: a token
is allowed only if the object can still be closed in the tokens left after it (:func:`closing_suffix`,
one single-character token per character at worst, and one for the stop token), so the object closes
and decoding stops within ``max_tokens`` whatever the model prefers, a model that keeps adding list
items included. The base SmolLM2, asked for
a haiku, still returns the object. HTTP endpoints cannot take a
logit mask, so there the fallback is one retry that shows the model its own output and what was
wrong with it. Both paths end in the same validation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any, Literal, TypeAlias

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


VALUE_GRAMMARS: dict[type, Callable[[str, int], int]] = {
    str: _string, float: partial(_number, kind=float), int: partial(_number, kind=int), bool: _bool, list: _string_list}
"""The value types a constrained object may ask for; ``list`` means a list of strings. A tuple of strings
instead of a type means "one of these strings" (a fixed vocabulary such as the seven moods)."""
Kind: TypeAlias = type | tuple[str, ...]


def _choice(text: str, i: int, values: tuple[str, ...]) -> int:
    """One of ``values`` as a JSON string."""
    rest = text[i:]
    for value in values:
        literal = json.dumps(value)
        if literal.startswith(rest):
            return _MORE if len(rest) < len(literal) else i + len(literal)
        if rest.startswith(literal):
            return i + len(literal)
    return _BAD


def _grammar(kind: Kind) -> Callable[[str, int], int]:
    return partial(_choice, values=kind) if isinstance(kind, tuple) else VALUE_GRAMMARS[kind]


def _key_literal(n: int, key: str) -> str:
    return ("{" if n == 0 else ", ") + json.dumps(key) + ": "


def json_prefix(text: str, required: Mapping[str, Kind]) -> Literal["bad", "partial", "complete"]:
    """Where ``text`` stands against ``{"k1": v1, "k2": v2}`` (keys in order, canonical spacing)."""
    i = 0
    for n, (key, kind) in enumerate(required.items()):
        i = _literal(text, i, _key_literal(n, key))
        if i >= 0:
            i = _grammar(kind)(text, i)
        if i < 0:
            return "partial" if i == _MORE else "bad"
    i = _literal(text, i, "{}" if not required else "}")
    if i < 0:
        return "partial" if i == _MORE else "bad"
    return "complete" if i == len(text) else "bad"


def _minimal(kind: Kind) -> str:
    if isinstance(kind, tuple):
        return json.dumps(min(kind, key=len))
    return {str: '""', float: "0", int: "0", bool: "false", list: "[]"}[kind]


def _new_item(items: set[str]) -> str:
    """The shortest JSON string not already in ``items`` (list items must differ)."""
    n = 0
    while json.dumps("x" * n) in items:
        n += 1
    return json.dumps("x" * n)


def _close_string(partial_: str, items: set[str] | None = None) -> str:
    """Close an open JSON string (an escape in progress first); keep it distinct from ``items``."""
    trailing = len(partial_) - len(partial_.rstrip("\\"))
    suffix = '"' + '"' if trailing % 2 else '"'
    extra = ""
    while items is not None and partial_ + extra + suffix in items:
        extra += "x"
    return extra + suffix


def _close_list(partial_: str) -> str:
    if not partial_:
        return "[]"
    i, items = 1, set[str]()
    while True:
        if i == len(partial_):
            return (_new_item(items) if items else "") + "]"
        end = _string(partial_, i)
        if end == _MORE:
            return _close_string(partial_[i:], items) + "]"
        items.add(partial_[i:end])
        if end == len(partial_):
            return "]"
        i = _literal(partial_, end, ", ")
        if i == _MORE:
            return ", "[len(partial_) - end:] + _new_item(items) + "]"


def _close_value(partial_: str, kind: Kind) -> str:
    """The shortest completion of a value of ``kind`` that ``partial_`` (a valid prefix of one) begins."""
    if isinstance(kind, tuple):
        return min((json.dumps(v)[len(partial_):] for v in kind if json.dumps(v).startswith(partial_)), key=len)
    if kind is str:
        return _close_string(partial_) if partial_ else '""'
    if kind in (int, float):
        return "0" if not partial_ or partial_[-1] in "-." else ""
    if kind is bool:
        literal = "true" if partial_.startswith("t") else "false"
        return literal[len(partial_):]
    return _close_list(partial_)


def closing_suffix(text: str, required: Mapping[str, Kind]) -> str:
    """The shortest text that turns ``text`` (a valid prefix, see :func:`json_prefix`) into a complete object."""
    items = list(required.items())

    def rest(after: int) -> str:
        return "".join(_key_literal(n, k) + _minimal(kind) for n, (k, kind) in enumerate(items) if n >= after) + "}"

    if not items:
        return "{}"[len(text):]
    i = 0
    for n, (key, kind) in enumerate(items):
        literal = _key_literal(n, key)
        j = _literal(text, i, literal)
        if j == _MORE:
            return literal[len(text) - i:] + _minimal(kind) + rest(n + 1)
        end = _grammar(kind)(text, j)
        if end == _MORE:
            return _close_value(text[j:], kind) + rest(n + 1)
        i = end
    return "}"[len(text) - i:]


class JsonMask:
    """A ``LogitsHook`` that lets the model write only the requested JSON object, then stop, within
    ``max_tokens`` tokens (see the module docstring).

    Among the tokens that keep the text a valid prefix that can still be closed in time it takes the
    best-scored, so the model still chooses every value; only the structure is forced."""

    def __init__(self, tokenizer: Tokenizer, required: Mapping[str, Kind], stop_ids: frozenset[int], max_tokens: int = 200) -> None:
        unsupported = sorted(k for k, kind in required.items()
                             if not (kind in VALUE_GRAMMARS or (isinstance(kind, tuple) and kind and all(isinstance(v, str) for v in kind))))
        if unsupported:
            kinds = ", ".join(t.__name__ for t in VALUE_GRAMMARS)
            raise InputError(f"cannot constrain JSON keys {unsupported}: value types must be one of {kinds}, "
                             "or a tuple of allowed strings")
        self.required = required
        self.stop_ids = stop_ids
        self.max_tokens = max_tokens
        self._decode = tokenizer.decode
        self._pieces, self._single_chars = _vocab_pieces(tokenizer)
        self._char_token = {self._pieces[int(i)]: int(i) for i in self._single_chars}
        smallest = closing_suffix("", required)
        if len(smallest) + 1 > max_tokens:
            raise InputError(f"max_tokens={max_tokens} cannot hold the smallest such object ({len(smallest)} characters): {smallest}")

    def _piece(self, token: int) -> str:
        if token not in self._pieces:
            self._pieces[token] = self._decode([token])
        return self._pieces[token]

    def __call__(self, out_ids: list[int], logits: np.ndarray) -> None:
        text = self._decode(out_ids) if out_ids else ""
        if json_prefix(text, self.required) == "complete":
            chosen = min(self.stop_ids)
        else:
            chosen = self._continuation(text, logits, self.max_tokens - len(out_ids) - 2)  # this token, and the stop token
        logits[:] = -np.inf
        logits[chosen] = 0.0

    def _continuation(self, text: str, logits: np.ndarray, left_after: int) -> int:
        """The best-scored token that keeps ``text`` a valid prefix closable in ``left_after`` more tokens."""
        top = np.argpartition(-logits, TOP_K)[:TOP_K]
        for candidates in (top[np.argsort(-logits[top])], self._single_chars[np.argsort(-logits[self._single_chars])]):
            for token in candidates.tolist():
                piece = self._piece(token)
                if piece and token not in self.stop_ids and json_prefix(text + piece, self.required) != "bad" \
                        and len(closing_suffix(text + piece, self.required)) <= left_after:
                    return int(token)
        closer = closing_suffix(text, self.required)  # out of room for the model's own choices: close it
        if closer and closer[0] in self._char_token:
            return self._char_token[closer[0]]
        raise GenerationError(f"no token continues the JSON after {text[-40:]!r}")


@lru_cache(maxsize=8)
def _vocab_pieces(tokenizer: Tokenizer) -> tuple[dict[int, str], np.ndarray]:
    """Per tokenizer, not per call (~50 ms for SmolLM2): a cache of decoded token pieces, seeded with
    the tokens that decode to one printable character (the fallback that always continues)."""
    single = [i for t, i in tokenizer.get_vocab().items() if len(t) == 1 or t == "Ġ"]
    pieces = {i: tokenizer.decode([i]) for i in single}
    return pieces, np.array([i for i in single if len(p := pieces[i]) == 1 and " " <= p <= "~"], np.int64)


def parse_json_object(text: str, required: Mapping[str, Kind]) -> tuple[dict[str, Any] | None, str]:
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
        if isinstance(kind, tuple):
            if value not in kind:
                return None, f"'{key}' must be one of {', '.join(kind)}, got {value!r}"
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, kind)
        if not ok:
            return None, f"'{key}' must be {kind.__name__}, got {type(value).__name__}"
    return obj, ""


def chat_json(generator: Generator, messages: list[Message], required: Mapping[str, Kind], *,
              max_tokens: int = 200, deadline_s: float = 10.0) -> dict[str, Any]:
    """A dict with at least the ``required`` keys of the given types, or ``GenerationError``.

    Constrained by :class:`JsonMask` on the local ONNX runtime; elsewhere validated and retried once."""
    hook = JsonMask(generator.tokenizer, required, generator.stop_ids, max_tokens) if isinstance(generator, OnnxCausalLM) else None
    problem = ""
    for _ in range(2):
        generation = generator.chat(messages, max_tokens=max_tokens, deadline_s=deadline_s, logits_hook=hook)
        obj, problem = parse_json_object(generation.text, required)
        if obj is not None:
            return obj
        if generation.stop_reason != "eos":
            problem = f"{problem} (generation stopped at {generation.stop_reason})"
        keys = ", ".join(f'"{k}" ({"one of " + "/".join(t) if isinstance(t, tuple) else t.__name__})' for k, t in required.items())
        messages = [*messages, Message("assistant", generation.text),
                    Message("user", f"That was not usable ({problem}). Reply with only one JSON object with keys {keys}.")]
    raise GenerationError(f"no valid JSON after one retry: {problem}")
