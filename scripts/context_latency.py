"""Context step latency: p50/p95/p99 of ``ContextTracker.run`` per message on one thread, over the packaged research
test messages, three passes after a warm-up. The slang lexicon is the cached one when ``$PENNY_SLM_CACHE`` holds it.

    PENNY_SLM_CACHE=~/.cache/penny-slm python scripts/context_latency.py
"""
import json, os, time, statistics
os.environ.setdefault("OMP_NUM_THREADS", "1")
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import ContextTracker
from penny_slm.rules.slang import default_lexicon
from penny_slm.training.datasets import data_dir
texts = [json.loads(l)["text"] for l in (data_dir() / "research_test.jsonl").read_text().splitlines() if l.strip()]
t = ContextTracker()
turns = [TurnContext.of(x) for x in texts]
for turn in turns[:50]:
    t.run(turn)
lat = []
for _ in range(3):
    for turn in turns:
        s = time.perf_counter(); t.run(turn); lat.append((time.perf_counter() - s) * 1000)
lat.sort()
print(json.dumps({"n": len(lat), "lexicon_terms": len(default_lexicon().terms), "lexicon_sources": default_lexicon().sources,
                  "p50_ms": round(statistics.median(lat), 3), "p95_ms": round(lat[int(0.95 * len(lat))], 3),
                  "p99_ms": round(lat[int(0.99 * len(lat))], 3)}))
