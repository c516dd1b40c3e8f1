"""``penny-slm eval context``: the context step against labelled messages, its baselines side by side (docs/cli.md).

Rows: ``{"text", "formality"?: 0–1, "technical_depth"?: 0–1, "mood"?: str, "slang"?: [terms as they appear],
"pair"?: str or int}``. One block per label present: formality and depth ``{n, pearson, spearman, mae}``, plus
``pairs`` and ``paired_accuracy`` when rows share ``pair`` ids (two texts ranked, not rated: GenPlus); mood ``{n, accuracy, macro_f1,
per_class}``; slang ``{n, precision, recall, f1, sentence_precision, sentence_recall}`` (terms matched
case-insensitively on the surface form). Baselines: the Flesch–Kincaid grade mapped to 0–1 (``grade / 16``) for
formality and depth, the majority class ``neutral`` (the largest of GoEmotions' 28 labels, and of XED) for mood, and the plain lexicon
(every entry by string match, no convention or context rules) for slang.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from penny_slm.errors import InputError
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import ContextTracker
from penny_slm.results import MOODS, ContextUpdate
from penny_slm.rules.slang import PENNY_SLANG, Lexicon, merged_dictionaries, term_pattern

MAJORITY_MOOD = "neutral"
LABELS = ("formality", "technical_depth", "mood", "slang")


HELD_OUT_LABEL = {"formality": "formality", "depth": "technical_depth", "mood": "mood", "slang": "slang"}
"""Context task → the label its held-out source carries (GenPlus pairs, CEFR-SP, XED, GenPlus slang; docs/DATA.md)."""


def checked_row(row: Any, where: str) -> dict[str, Any]:
    """One eval row, checked: ``InputError`` names ``where`` and the field."""
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise InputError(f"{where}: each line needs a string 'text'")
    for key in ("formality", "technical_depth"):
        if key in row and not (isinstance(row[key], int | float) and 0.0 <= row[key] <= 1.0):
            raise InputError(f"{where}: {key} must be a number 0-1")
    if "mood" in row and row["mood"] not in MOODS:
        raise InputError(f"{where}: mood must be one of {', '.join(MOODS)}")
    if "slang" in row and not (isinstance(row["slang"], list) and all(isinstance(t, str) for t in row["slang"])):
        raise InputError(f"{where}: slang must be a list of strings")
    if "pair" in row and not isinstance(row["pair"], str | int):
        raise InputError(f"{where}: pair must be a string or an integer id")
    return row


def load_context_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of an eval file, each checked: ``InputError`` names the line and the field."""
    return [checked_row(json.loads(line), f"{path}:{i}")
            for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1) if line.strip()]


def held_out_rows(task: str) -> list[dict[str, Any]]:
    """The cached source held out for ``task`` (``HELD_OUT_LABEL``), each row cut to its text, that task's label and
    its pair id, so the report has that task's block alone (GenPlus rows carry slang and formality both)."""
    from penny_slm.training import importers

    key = HELD_OUT_LABEL[task]
    rows = importers.rows(task, ("test",))[0]
    if not rows:
        raise InputError(f"no held-out {task} source is cached; fetch it with: penny-slm data fetch")
    return [checked_row({k: r[k] for k in ("text", key, "pair") if k in r}, f"{task} held-out row {i}")
            for i, r in enumerate(rows, 1)]


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):  # ties share their mean rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def regression_block(gold: Sequence[float], pred: Sequence[float], pairs: Sequence[Any] | None = None) -> dict[str, Any]:
    """Pearson, Spearman and MAE of predicted against gold values (formality or technical depth); with ``pairs`` (a
    pair id per row, None for none) also ``paired_accuracy``: the share of pairs whose higher-labelled text is
    predicted higher (a tie counts half), for sources that rank two texts instead of rating one (GenPlus)."""
    g, p = np.asarray(gold, float), np.asarray(pred, float)
    out = {"n": len(g), "pearson": _pearson(g, p), "spearman": _pearson(_ranks(g), _ranks(p)),
           "mae": round(float(np.abs(g - p).mean()), 4) if len(g) else None}
    if pairs is not None and any(x is not None for x in pairs):
        members: dict[Any, list[int]] = {}
        for i, pair in enumerate(pairs):
            if pair is not None:
                members.setdefault(pair, []).append(i)
        scores = []
        for a, b in (ids for ids in members.values() if len(ids) == 2):
            if g[a] != g[b]:
                hi, lo = (a, b) if g[a] > g[b] else (b, a)
                scores.append(1.0 if p[hi] > p[lo] else 0.5 if p[hi] == p[lo] else 0.0)
        out |= {"pairs": len(scores), "paired_accuracy": round(float(np.mean(scores)), 4) if scores else None}
    return out


def mood_block(gold: Sequence[str], pred: Sequence[str | None]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision, recall and F1 of predicted moods (None counts as wrong)."""
    per_class, f1s = {}, []
    for label in MOODS:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if p == label != g)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label != p)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[label] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4)}
        f1s.append(f1)
    accuracy = sum(1 for g, p in zip(gold, pred, strict=True) if g == p) / len(gold) if gold else None
    return {"n": len(gold), "accuracy": None if accuracy is None else round(accuracy, 4),
            "macro_f1": round(float(np.mean(f1s)), 4), "per_class": per_class}


def _term_key(term: str) -> tuple[str, ...]:
    """A term as its lower-case words, with "-" read as a space ("glow-up" = "glow up")."""
    return tuple(re.split(r"[\s-]+", term.lower().replace("’", "'").strip()))


def _same_term(gold: tuple[str, ...], found: tuple[str, ...]) -> bool:
    """The annotated term, written together or apart ("brainrot" = "brain rot"), or inside the found term as whole
    words (the annotated "cap" of a found "no cap"): the found span covers the annotation. A found term inside a longer
    annotated one ("bag" of "secure the bag") is not a match."""
    if "".join(gold) == "".join(found):
        return True
    return any(found[i:i + len(gold)] == gold for i in range(len(found) - len(gold) + 1))


def slang_block(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Term-level precision, recall and F1 (per message, each annotated term matched to at most one found term by
    :func:`_same_term`), and sentence-level precision and recall (any slang found or not), case-insensitive."""
    tp = fp = fn = s_tp = s_fp = s_fn = 0
    for g_terms, p_terms in zip(gold, pred, strict=True):
        g, p = sorted({_term_key(t) for t in g_terms}), sorted({_term_key(t) for t in p_terms})
        unmatched = list(p)
        for term in g:
            hit = next((q for q in unmatched if _same_term(term, q)), None)
            if hit is not None:
                unmatched.remove(hit)
        matched = len(p) - len(unmatched)
        tp, fp, fn = tp + matched, fp + len(unmatched), fn + len(g) - matched
        s_tp += bool(g) and bool(p)
        s_fp += bool(p) and not g
        s_fn += bool(g) and not p
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"n": len(gold), "precision": round(prec, 4), "recall": round(rec, 4),
            "f1": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0,
            "sentence_precision": round(s_tp / (s_tp + s_fp), 4) if s_tp + s_fp else 0.0,
            "sentence_recall": round(s_tp / (s_tp + s_fn), 4) if s_tp + s_fn else 0.0}


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    return max(1, len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0))


def readability(text: str) -> float:
    """The baseline for formality and depth: Flesch–Kincaid grade / 16, clipped to [0, 1]."""
    words = re.findall(r"[A-Za-z]+", text)
    if not words:
        return 0.0
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    grade = 0.39 * len(words) / sentences + 11.8 * sum(map(_syllables, words)) / len(words) - 15.59
    return min(1.0, max(0.0, grade / 16))


def raw_lexicon() -> Lexicon:
    """The slang baseline's lexicon: the same entries as the tracker's, before the convention filters them."""
    return Lexicon({**merged_dictionaries()[0], **PENNY_SLANG}, ("raw",))


def lexicon_terms(text: str, lexicon: Lexicon) -> list[str]:
    """The slang baseline: every lexicon entry found by word-boundary string match, nothing filtered."""
    return [m.group(0).lower() for m in term_pattern(tuple(sorted(lexicon.terms))).finditer(text)]


def evaluate_context(rows: Sequence[dict[str, Any]], run: Callable[[TurnContext], ContextUpdate] | None = None,
                     baseline_lexicon: Lexicon | None = None, version: str | None = None) -> dict[str, Any]:
    """The eval result for ``rows``; ``run`` is the context step (default: :class:`ContextTracker` unloaded, so rules
    only and no mood; the CLI passes the configured step, loaded); ``version`` is reported as ``model_version``."""
    if not rows:
        raise InputError("no rows to evaluate")
    if run is None:
        tracker = ContextTracker()
        run, version = tracker.run, tracker.model_version
    raw = baseline_lexicon or raw_lexicon()
    outputs, latencies = [], []
    for row in rows:
        turn = TurnContext.of(row["text"])
        start = time.perf_counter()
        outputs.append(run(turn))
        latencies.append((time.perf_counter() - start) * 1000)
    result: dict[str, Any] = {"n": len(rows), **({"model_version": version} if version else {})}
    baseline: dict[str, Any] = {}
    for key, attr in (("formality", "formality_level"), ("technical_depth", "technical_depth")):
        idx = [i for i, r in enumerate(rows) if key in r and getattr(outputs[i], attr) is not None]
        if any(key in r for r in rows):
            gold, pairs = [rows[i][key] for i in idx], [rows[i].get("pair") for i in idx]
            result[key] = regression_block(gold, [getattr(outputs[i], attr) for i in idx], pairs)
            baseline[key] = regression_block(gold, [readability(rows[i]["text"]) for i in idx], pairs)
    idx = [i for i, r in enumerate(rows) if "mood" in r]
    if idx:
        gold_moods = [rows[i]["mood"] for i in idx]
        predicted = [outputs[i].context_markers.get("mood") for i in idx]
        result["mood"] = mood_block(gold_moods, predicted) if any(predicted) else {
            "n": len(idx), "accuracy": None, "macro_f1": None, "per_class": {},
            "note": "not measured: the context step predicted no mood (no mood head is built: penny-slm models build --only mood)"}
        baseline["mood"] = mood_block(gold_moods, [MAJORITY_MOOD] * len(idx))
    idx = [i for i, r in enumerate(rows) if "slang" in r]
    if idx:
        gold_slang = [rows[i]["slang"] for i in idx]
        result["slang"] = slang_block(gold_slang, [[rows[i]["text"][s.start:s.end] for s in outputs[i].slang_detected] for i in idx])
        baseline["slang"] = slang_block(gold_slang, [lexicon_terms(rows[i]["text"], raw) for i in idx])
    lat = np.asarray(latencies)
    result["latency_ms"] = {q: round(float(np.percentile(lat, p)), 3) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}
    result["baseline"] = baseline
    return result
