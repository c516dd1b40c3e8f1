"""Dev sweep of the rewriter's copy bonus (docs/MEASUREMENTS.md, "Copy bonus").

Dev rows: guard_test.jsonl rows whose text is not a rewriter_test source, so the test split stays unseen.
Usage: python scripts/copy_bonus_sweep.py [--no-flags] [--draft N] 0 3 6   (needs `penny-slm models build`)
--no-flags: the bonus also on sentences the tone scorer flags (the first version of the bonus).
--draft N: N source tokens proposed per forward pass (prompt-lookup decoding; 0: one token per pass).
"""

import json
import sys
import time

import numpy as np

from penny_slm.cli import _registry
from penny_slm.config import load_config
from penny_slm.pipeline.modules.guard import PersonalityGuard
from penny_slm.rules.prohibitions import detect, fix
from penny_slm.training.datasets import data_dir

guard = PersonalityGuard()
guard.load(_registry(load_config()))
rewriter, persona = guard.rewriter, guard.persona
assert rewriter is not None and rewriter.loaded, "build the rewriter first: penny-slm models build"
args = sys.argv[1:]
if "--no-flags" in args:
    args.remove("--no-flags")
    rewriter.flags_sentence = None
if "--draft" in args:
    at = args.index("--draft")
    rewriter.draft_tokens = int(args[at + 1])
    del args[at:at + 2]
test_sources = {json.loads(line)["source"] for line in open(data_dir() / "rewriter_test.jsonl")}
rows = [json.loads(line) for line in open(data_dir() / "guard_test.jsonl")]
rows = [r for r in rows if r["text"] not in test_sources]
clean = [fix(r["text"], persona)[0] for r in rows if not r["violations"]]
violating = [fix(r["text"], persona)[0] for r in rows if r["violations"]]
print(f"dev rows: {len(clean)} clean, {len(violating)} violating")
for bonus in map(float, args):
    rewriter.copy_bonus = bonus
    start = time.perf_counter()
    unchanged = [rewriter.rewrite(t, deadline_s=30).text == t for t in clean]
    outputs = [rewriter.rewrite(t, deadline_s=30).text for t in violating]
    seconds = time.perf_counter() - start
    passed = [not detect(o, persona) and guard.tone.p_cheerleader(o) < guard.tone_threshold for o in outputs]
    accepted = [guard.accepts_rewrite(t, o) for t, o in zip(violating, outputs)]
    print(f"bonus {bonus}: clean unchanged {np.mean(unchanged):.3f}, pass {np.mean(passed):.3f}, "
          f"accepted {np.mean(accepted):.3f}, {seconds / len(rows) * 1000:.0f} ms per rewrite (draft {rewriter.draft_tokens})")
