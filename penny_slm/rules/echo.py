"""``prompt_echo``: the response repeats Penny's own system prompt back (issue 23: SmolLM2 answered a question with
"The user's name is CJ; say \"you\"...").

An echo is not fixable by editing: what is left around it is rarely an answer. The guard makes the turn fall
back (``pipeline/modules/guard.py``) and logs why. Detection compares word ``SHINGLE``-grams (lower-cased,
punctuation ignored) of the response with those of the prompt in linear time (one set of the prompt's
shingles, one pass over the response's words). A response word is *copied* when a shingle holding it is in
the prompt. It is an echo when at least ``MIN_COPIED`` words are copied and they are half the response or
``PROMPT_SHARE`` of the prompt.

What to compare against is Penny's own instructions only: research notes quote search results the answer is
meant to use, so the layer passes the prompt without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SHINGLE = 6
MIN_COPIED = 8
PROMPT_SHARE = 0.2
RESPONSE_SHARE = 0.5
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Echo:
    """How much of ``prompt`` a response repeats: ``copied`` of its ``response_words`` words sit in a shingle
    of the prompt's ``prompt_words``; ``first`` is the first copied passage (for the log)."""

    copied: int
    response_words: int
    prompt_words: int
    first: str

    @property
    def is_echo(self) -> bool:
        """Whether enough of the response is copied from the system prompt to count as an echo (by share of either text).
        """
        return self.copied >= MIN_COPIED and (self.copied >= RESPONSE_SHARE * self.response_words
                                              or self.copied >= PROMPT_SHARE * self.prompt_words)

    def reason(self) -> str:
        """The log line that says how much was copied, with an example."""
        return (f"the main LLM echoed its system prompt ({self.copied} of {self.response_words} words copied from it, "
                f"e.g. {self.first[:60]!r})")


def prompt_echo(response: str, prompt: str) -> Echo:
    """How much of ``prompt`` ``response`` repeats (see the module docstring)."""
    prompt_tokens = [w.lower() for w in _WORD.findall(prompt)]
    shingles = {tuple(prompt_tokens[i:i + SHINGLE]) for i in range(len(prompt_tokens) - SHINGLE + 1)}
    words = list(_WORD.finditer(response))
    tokens = [w.group().lower() for w in words]
    copied = [False] * len(tokens)
    for i in range(len(tokens) - SHINGLE + 1):
        if tuple(tokens[i:i + SHINGLE]) in shingles:
            copied[i:i + SHINGLE] = [True] * SHINGLE
    first = ""
    if any(copied):
        a = copied.index(True)
        b = a
        while b + 1 < len(copied) and copied[b + 1]:
            b += 1
        first = response[words[a].start():words[b].end()]
    return Echo(sum(copied), len(tokens), len(prompt_tokens), first)
