"""Register probe: would a formality or depth head on MiniLM beat the rules (``rules/register.py``) on held-out text?

Frozen all-MiniLM-L6-v2 sentence vectors + ridge regression, trained on the source priors of the formality and
depth training sources (``importers.register``; GoEmotions as the informal anchor, and half of those comments as the
everyday anchor of depth at ``--everyday-depth`` in a second depth fit), training rows that equal or nearly equal a
held-out text dropped as the builds do (``datasets.drop_overlapping``), the ridge penalty chosen on the training
sources' stable dev tenth (``datasets.is_dev``). Scored on the held-out sources only: GenPlus pairs for formality (paired accuracy, Spearman)
and CEFR-SP Wiki-Auto for depth (Spearman against the CEFR level), next to the rules and the Flesch-Kincaid
baseline. CEFR-SP rates how hard a sentence is to read; the issue's depth is the audience a message is written for, so
depth is also scored on an **audience** construction: 300 seeded messages each from sources no depth row comes from,
at the level of their audience (``AUDIENCE``: everyday search and banking questions, school maths, consumer medicine,
SQL developers), and on MMLU questions levelled by their authors (``mmlu_rows``: elementary, high school, college,
professional subjects, the same number of each), with the blend of head and rules (their mean) beside both. Needs the train extra and the cached sources (penny-slm data fetch). Results: docs/MEASUREMENTS.md,
"Formality and depth heads: measured, not shipped".

    python scripts/register_probe.py --goemotions 4000 --pairs 2000 --json [--mood-encoder models/mood/v1]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import Ridge

from penny_slm.pipeline.adapters.onnx_encoder import OnnxEncoder
from penny_slm.rules import register
from penny_slm.training import importers
from penny_slm.training.datasets import drop_overlapping, is_dev
from penny_slm.training.evaluate import SentenceEmbedder
from penny_slm.training.evaluate_context import readability, regression_block

ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0)
AUDIENCE = {"webquestions": 0.1, "mimics-manual": 0.1, "banking77": 0.1, "gsm8k-train": 0.4, "medquad": 0.6, "staqc-sql": 0.9}
"""Research-task sources as an audience-level depth set: everyday questions, school maths, consumer health, developers'
SQL titles. The levels are this probe's assumption (a source's audience, not a rating of each message)."""
AUDIENCE_PER_SOURCE = 300


def mmlu_rows(seed: int) -> list[dict[str, Any]]:
    """MMLU questions levelled by their authors (``mmlu-levels``, a depth probe source): the same seeded number from
    each level (the smallest level's count, elementary's 378), so no level dominates the ranking."""
    by_level: dict[float, list[dict[str, Any]]] = {}
    for r in importers.rows("depth", ("probe",))[0]:
        if r["source"] == "mmlu-levels":
            by_level.setdefault(float(r["technical_depth"]), []).append(r)
    if not by_level:
        return []
    n, rng = min(len(v) for v in by_level.values()), random.Random(seed)
    return [r for level in sorted(by_level) for r in rng.sample(by_level[level], n)]


def audience_rows(seed: int) -> list[dict[str, Any]]:
    """``AUDIENCE_PER_SOURCE`` seeded messages of each ``AUDIENCE`` source, each with its source's level."""
    by_source: dict[str, set[str]] = {source: set() for source in AUDIENCE}
    for r in importers.rows("research", ("train", "test"))[0]:
        if r["source"] in by_source:
            by_source[r["source"]].add(r["text"])
    rng = random.Random(seed)
    return [{"text": t, "technical_depth": AUDIENCE[source], "source": source} for source, texts in by_source.items()
            for t in rng.sample(sorted(texts), min(AUDIENCE_PER_SOURCE, len(texts)))]


def mood_embedder(version_dir: Path) -> Callable[[list[str]], np.ndarray]:
    """Texts → the mood head's pooled vectors (its graph copied with that vector as an extra output), 64 tokens as the
    head reads them."""
    from shared_encoder_probe import encode_all, with_embedding_output

    graph = Path(tempfile.mkdtemp()) / "mood_with_embedding.onnx"
    with_embedding_output(version_dir / "model.onnx", graph, "mood")
    encoder = OnnxEncoder(graph, version_dir / "tokenizer.json", intra_op_threads=2, max_tokens=64)
    encoder.load()
    return lambda texts: encode_all(encoder, texts, "embedding")


def ridge_on_dev(x: np.ndarray, y: np.ndarray, texts: list[str]) -> tuple[Ridge, float, float]:
    """The ridge whose penalty correlates best on the dev tenth, refitted on all rows; (model, alpha, dev Pearson)."""
    dev = np.array([is_dev(t) for t in texts])
    scored = []
    for alpha in ALPHAS:
        pred = Ridge(alpha=alpha).fit(x[~dev], y[~dev]).predict(x[dev])
        scored.append((float(np.corrcoef(pred, y[dev])[0, 1]), alpha))
    r, alpha = max(scored)
    return Ridge(alpha=alpha).fit(x, y), alpha, round(r, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goemotions", type=int, default=4000, help="GoEmotions rows sampled as the informal anchor")
    parser.add_argument("--everyday-depth", type=float, default=0.05, help="depth prior of the GoEmotions anchor rows")
    parser.add_argument("--pairs", type=int, default=2000, help="GenPlus pairs sampled (0: all 10,000)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--mood-encoder", metavar="VERSION_DIR",
                        help="embed with a built mood head's pooled vector (the pass the context step already pays for) "
                             "instead of the base MiniLM")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    formality_train, _ = importers.rows("formality", ("train",))
    reddit = [r for r in formality_train if r["source"] == "goemotions"]
    anchor = rng.sample(reddit, min(args.goemotions, len(reddit)))
    formality_rows = [r for r in formality_train if r["source"] != "goemotions"] + anchor
    depth_rows = importers.rows("depth", ("train",))[0]
    everyday = [{"text": r["text"], "technical_depth": args.everyday_depth} for r in anchor[: args.goemotions // 2]]
    genplus = importers.rows("formality", ("test",))[0]
    pair_ids = sorted({r["pair"] for r in genplus})
    if 0 < args.pairs < len(pair_ids):
        keep = set(random.Random(0).sample(pair_ids, args.pairs))
        genplus = [r for r in genplus if r["pair"] in keep]
    cefr = importers.rows("depth", ("test",))[0]
    levelled = {"audience": audience_rows(args.seed), "mmlu": mmlu_rows(args.seed)}
    held_texts = [r["text"] for rows in (cefr, *levelled.values()) for r in rows]
    formality_rows = drop_overlapping(formality_rows, [r["text"] for r in genplus])
    depth_rows = drop_overlapping(depth_rows, held_texts)
    everyday = drop_overlapping(everyday, held_texts)

    embed = mood_embedder(Path(args.mood_encoder)) if args.mood_encoder else SentenceEmbedder(batch_size=64)
    out: dict[str, Any] = {"rows": {"formality_train": len(formality_rows), "depth_train": len(depth_rows) + len(everyday),
                                    "genplus": len(genplus), "cefr": len(cefr)} | {k: len(v) for k, v in levelled.items()}}

    def held_out(rows: list[dict[str, Any]], key: str, pred: np.ndarray | list[float]) -> dict[str, Any]:
        return regression_block([r[key] for r in rows], list(np.clip(pred, 0, 1)), [r.get("pair") for r in rows])

    model, alpha, dev_r = ridge_on_dev(embed([r["text"] for r in formality_rows]),
                                       np.array([r["formality"] for r in formality_rows]), [r["text"] for r in formality_rows])
    out["formality"] = {"head": held_out(genplus, "formality", model.predict(embed([r["text"] for r in genplus]))),
                        "alpha": alpha, "dev_pearson": dev_r,
                        "rules": held_out(genplus, "formality", [register.formality(r["text"]) for r in genplus]),
                        "readability": held_out(genplus, "formality", [readability(r["text"]) for r in genplus])}
    for name, rows in (("depth", depth_rows), ("depth_with_everyday_anchor", depth_rows + everyday)):
        model, alpha, dev_r = ridge_on_dev(embed([r["text"] for r in rows]), np.array([r["technical_depth"] for r in rows]),
                                           [r["text"] for r in rows])
        out[name] = {"head": held_out(cefr, "technical_depth", model.predict(embed([r["text"] for r in cefr]))),
                     "alpha": alpha, "dev_pearson": dev_r}
        for set_name, level_rows in levelled.items():
            if level_rows:
                head = np.clip(model.predict(embed([r["text"] for r in level_rows])), 0, 1)
                rules = np.array([register.technical_depth(r["text"]) for r in level_rows])
                out[name][set_name] = {"head": held_out(level_rows, "technical_depth", head),
                                       "blend": held_out(level_rows, "technical_depth", (head + rules) / 2)}
    out["depth"] |= {"rules": held_out(cefr, "technical_depth", [register.technical_depth(r["text"]) for r in cefr]),
                     "readability": held_out(cefr, "technical_depth", [readability(r["text"]) for r in cefr])}
    for set_name, level_rows in levelled.items():
        if level_rows:
            out["depth"][set_name] |= {
                "rules": held_out(level_rows, "technical_depth", [register.technical_depth(r["text"]) for r in level_rows]),
                "readability": held_out(level_rows, "technical_depth", [readability(r["text"]) for r in level_rows])}
    print(json.dumps(out, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
