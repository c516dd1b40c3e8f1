"""Context step latency: p50/p95/p99 of ``ContextTracker.run`` per message on one thread, over the packaged research
test messages, three passes after a warm-up. The slang lexicon is the cached one when ``$PENNY_SLM_CACHE`` holds it.
With ``--mood`` the step loads the mood head from the registry (``$PENNY_SLM_MODELS`` or ``--models-dir``), as the
layer does when the ``mood`` artifact is built; without it, the rules alone.

    PENNY_SLM_CACHE=~/.cache/penny-slm python scripts/context_latency.py [--mood] [--models-dir models]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from penny_slm.config import load_config
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import ContextTracker
from penny_slm.rules.slang import default_lexicon
from penny_slm.training.datasets import data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mood", action="store_true", help="load the mood head (it must be built)")
    ap.add_argument("--models-dir", help="artifact folder (default: $PENNY_SLM_MODELS or the config's)")
    args = ap.parse_args()
    lines = (data_dir() / "research_test.jsonl").read_text().splitlines()
    turns = [TurnContext.of(json.loads(line)["text"]) for line in lines if line.strip()]
    tracker = ContextTracker()  # one intra-op thread, as the layer's default runtime.intra_op_threads
    if args.mood:
        tracker.load(ModelRegistry(Path(args.models_dir) if args.models_dir else load_config().models_dir()))
        if tracker.mood_version is None:
            raise SystemExit("no mood head is built: penny-slm models build --only mood")
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
    print(json.dumps({"n": len(lat), "model_version": tracker.model_version, "lexicon_terms": len(lexicon.terms), "lexicon_sources": lexicon.sources,
                      "p50_ms": round(statistics.median(lat), 3), "p95_ms": round(lat[int(0.95 * len(lat))], 3),
                      "p99_ms": round(lat[int(0.99 * len(lat))], 3)}))


if __name__ == "__main__":
    main()
