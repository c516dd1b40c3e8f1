"""Gloss probe (issue 18): can the default generative SLM gloss a slang term it is shown in a sentence?

For every term of the packaged hand-written lexicon (``rules.slang.PENNY_SLANG``, whose glosses this project wrote),
the local SmolLM2-135M is asked, through ``chat_json`` (constrained JSON, as the layer would call it), what the term
means in a short sentence; each answer is printed beside the lexicon's gloss for a reader to judge, with the share of
answers that only repeat the term or the sentence. Needs ``smollm2-135m`` built (penny-slm models build).

    PENNY_SLM_MODELS=models python scripts/gloss_probe.py
"""

from __future__ import annotations

import time

from penny_slm.config import load_config
from penny_slm.errors import GenerationError
from penny_slm.pipeline.adapters.base import Message
from penny_slm.pipeline.adapters.structured import chat_json
from penny_slm.pipeline.factory import SLMFactory
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.rules.slang import PENNY_SLANG

SYSTEM = "You explain internet slang in a few plain words."


def main() -> None:
    cfg = load_config()
    generator = SLMFactory(cfg, ModelRegistry(cfg.models_dir())).get_slm("smollm2-135m")
    echoes = 0
    for term, gloss in PENNY_SLANG.items():
        sentence = f"that was so {term} fr"
        start = time.perf_counter()
        try:
            answer = str(chat_json(generator, [Message("system", SYSTEM), Message(
                "user", f'What does the slang term "{term}" mean in: "{sentence}"? Answer with JSON {{"gloss": "..."}}')],
                {"gloss": str}, max_tokens=40, deadline_s=10)["gloss"])
        except GenerationError as exc:
            answer = f"(no answer: {exc})"
        words = answer.lower().strip(" .!?…")
        echoes += not words.strip(".") or term in words or words in sentence
        print(f"{term!r:16} lexicon: {gloss!r:36} model: {answer!r} ({time.perf_counter() - start:.2f} s)")
    print(f"{echoes} of {len(PENNY_SLANG)} answers only repeat the term or the sentence, or are empty")


if __name__ == "__main__":
    main()
