"""JSON output from any ``Generator``: parse, validate against the required keys and types, retry once.

Neither runtime here offers grammar-constrained decoding (the ONNX loop could, via a logits hook, but
a JSON grammar is not worth its weight for the flat objects Penny asks for), so this is the
framework's fallback: one retry that shows the model its own output and what was wrong with it.
"""

from __future__ import annotations

import json
from typing import Any

from penny_slm.errors import GenerationError
from penny_slm.pipeline.adapters.base import Generator, Message


def _problem(text: str, required: dict[str, type]) -> tuple[dict[str, Any] | None, str]:
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
    """A dict with at least the ``required`` keys of the given types, or ``GenerationError``."""
    problem = ""
    for _ in range(2):
        generation = generator.chat(messages, max_tokens=max_tokens, deadline_s=deadline_s)
        obj, problem = _problem(generation.text, required)
        if obj is not None:
            return obj
        keys = ", ".join(f'"{k}" ({t.__name__})' for k, t in required.items())
        messages = [*messages, Message("assistant", generation.text),
                    Message("user", f"That was not usable ({problem}). Reply with only one JSON object with keys {keys}.")]
    raise GenerationError(f"no valid JSON after one retry: {problem}")
