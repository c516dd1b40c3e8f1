"""Context step latency: p50/p95/p99 of ``ContextTracker.run`` per message on one thread, over the packaged research
test messages, three passes after a warm-up. The slang lexicon is the cached one when ``$PENNY_SLM_CACHE`` holds it.

    PENNY_SLM_CACHE=~/.cache/penny-slm python scripts/context_latency.py
"""

from __future__ import annotations

import json
import statistics
import time

from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import ContextTracker
from penny_slm.rules.slang import default_lexicon
from penny_slm.training.datasets import data_dir


def main() -> None:
    lines = (data_dir() / "research_test.jsonl").read_text().splitlines()
    turns = [TurnContext.of(json.loads(line)["text"]) for line in lines if line.strip()]
    tracker = ContextTracker()
    for turn in turns[:50]:
        tracker.run(turn)
    lat = []
    for _ in range(3):
        for turn in turns:
            start = time.perf_counter()
            tracker.run(turn)
            lat.append((time.perf_counter() - start) * 1000)
    lat.sort()
    lexicon = default_lexicon()
    print(json.dumps({"n": len(lat), "lexicon_terms": len(lexicon.terms), "lexicon_sources": lexicon.sources,
                      "p50_ms": round(statistics.median(lat), 3), "p95_ms": round(lat[int(0.95 * len(lat))], 3),
                      "p99_ms": round(lat[int(0.99 * len(lat))], 3)}))


if __name__ == "__main__":
    main()
