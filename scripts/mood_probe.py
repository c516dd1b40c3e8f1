"""Mood probe: how far a frozen MiniLM encoder plus logistic regression gets on the seven Ekman moods, trained on
GoEmotions (train + dev, test texts dropped) and scored on XED, a source held out from training.

Not the mood head (that is an encoder artifact built by ``penny-slm models build``); it measures what the frozen
approach is worth before the head is wired in. Needs the train extra and the cached sources (penny-slm data fetch).

    python scripts/mood_probe.py --train 6000 --test 3000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter

from sklearn.linear_model import LogisticRegression

from penny_slm.training import importers
from penny_slm.training.evaluate_context import MAJORITY_MOOD, MOODS, mood_block
from penny_slm.training.heads import _embed, new_model


def sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` rows at random (all when ``n`` is 0 or more than there are), seeded."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows if n <= 0 else rows[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=6000, help="GoEmotions rows to train on (0: all)")
    ap.add_argument("--test", type=int, default=3000, help="XED rows to score (0: all)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    train, provenance = importers.rows("mood", ("train",))
    test, test_provenance = importers.rows("mood", ("test",))
    if not train or not test:
        raise SystemExit(f"mood sources not cached: {provenance} {test_provenance}; run: penny-slm data fetch")
    train, test = sample(train, args.train, args.seed), sample(test, args.test, args.seed + 1)
    start = time.perf_counter()
    model, tokenizer = new_model({"mood": MOODS})
    x_train = _embed(model, tokenizer, [r["text"] for r in train], 128)
    x_test = _embed(model, tokenizer, [r["text"] for r in test], 128)
    embed_s = time.perf_counter() - start
    clf = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced", random_state=args.seed)
    clf.fit(x_train, [r["mood"] for r in train])
    gold = [r["mood"] for r in test]
    result = {"train": {"source": provenance, "n": len(train), "moods": dict(Counter(r["mood"] for r in train))},
              "test": {"source": test_provenance, "n": len(test), "moods": dict(Counter(gold))},
              "probe": mood_block(gold, list(clf.predict(x_test))),
              "majority_baseline": mood_block(gold, [MAJORITY_MOOD] * len(gold)),
              "embed_seconds": round(embed_s, 1)}
    print(json.dumps(result, indent=2) if args.json else
          f"macro-F1 {result['probe']['macro_f1']} accuracy {result['probe']['accuracy']} on {len(test)} XED rows "
          f"(majority: {result['majority_baseline']['macro_f1']})")


if __name__ == "__main__":
    main()
