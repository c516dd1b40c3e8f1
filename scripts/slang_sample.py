"""Slang sample (issue 18): what the lexicon finds on real training-side text, for a person to read.

Runs ``rules.slang.detect_slang`` over every distinct text of the mood and formality training rows (GoEmotions
train/dev, EmoBank; not a held-out set), prints the counts and a seeded sample of the spans found, each with its
message. ``--company`` samples only spans counted by slang company; ``--added-by SOURCE`` only spans that appear
because of one dictionary (detect with and without it). Figures from it are in docs/DATA.md ("Slang dictionaries").

    PENNY_SLM_CACHE=<cache> python scripts/slang_sample.py --seed 8 --n 40
"""

from __future__ import annotations

import argparse
import collections
import random

from penny_slm.results import SlangSpan
from penny_slm.rules import slang
from penny_slm.training import importers


def training_texts() -> list[str]:
    """Every distinct text of the mood and formality training rows."""
    texts: list[str] = []
    for task in ("mood", "formality"):
        rows, _ = importers.rows(task, ("train",))
        texts += [r["text"] for r in rows]
    return list(dict.fromkeys(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--company", action="store_true", help="only spans counted by slang company")
    parser.add_argument("--added-by", metavar="SOURCE", help="only spans this cached dictionary adds")
    args = parser.parse_args()
    texts = training_texts()
    base = slang.make_lexicon(*slang.merged_dictionaries(args.added_by)) if args.added_by else None
    found: list[tuple[str, SlangSpan]] = []
    for text in texts:
        before = {(s.start, s.end) for s in slang.detect_slang(text, base)} if base else set()
        found += [(text, s) for s in slang.detect_slang(text) if (s.start, s.end) not in before
                  and (not args.company or s.confidence == slang.COMPANY_CONFIDENCE)]
    print(f"{len(texts)} texts, {len({t for t, _ in found})} with a span shown, {len(found)} spans")
    print(collections.Counter(s.term for _, s in found).most_common(30))
    random.seed(args.seed)
    for text, span in random.sample(found, min(args.n, len(found))):
        print(f"[{span.term} | {span.confidence}] {text[:150]!r}")


if __name__ == "__main__":
    main()
