"""Score a research classifier and the keyword baseline on the same rows, side by side.

Runs the *runtime* classifier (ONNX, the artifact Penny ships), so reported numbers are the shipped ones.
Needs only numpy at import; the optional report's PNGs need matplotlib (the ``[train]`` extra).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

import numpy as np

from penny_slm.errors import InputError
from penny_slm.results import CATEGORIES, GuardResult, ResearchClassification, ViolationName
from penny_slm.rules.keywords import keyword_classify
from penny_slm.jsonl import jsonl_objects
from penny_slm.training.datasets import Example, ResearchRow

N_BINS = 10
R = TypeVar("R")
T = TypeVar("T")


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of samples given in seconds, in milliseconds (NaN samples, rows not timed, are left out; none
    timed: empty)."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    ms = ms[np.isfinite(ms)]
    if not len(ms):
        return {}
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS, low: float = 0.5) -> float:
    """Weighted mean |accuracy − confidence| over equal-width confidence bins from ``low`` to 1 (0.5 for a binary call,
    the top probability of a k-class call can go down to 1/k)."""
    edges = np.linspace(low, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


@dataclass(frozen=True, slots=True)
class EvalReport:
    """The research classifier's binary figures on one data set, with the category accuracy, calibration and latency."""
    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    false_positives: int
    category_accuracy: float | None
    ece: float | None
    latency_ms: dict[str, float]
    confusion: dict[str, int]  # tp, fp, tn, fn

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready fields."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def binary_report(y: np.ndarray, pred: np.ndarray, confidence: np.ndarray | None, latencies_s: list[float],
                  category_accuracy: float | None = None) -> EvalReport:
    """Metrics for a yes/no decision. ``confidence`` is P(the decision is right); None skips ECE."""
    y, pred = y.astype(bool), pred.astype(bool)
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    tn, fn = int((~pred & ~y).sum()), int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return EvalReport(
        n=len(y),
        accuracy=round(float((pred == y).mean()), 4),
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(2 * precision * recall / (precision + recall) if precision + recall else 0.0, 4),
        false_positive_rate=round(fp / (fp + tn) if fp + tn else 0.0, 4),
        false_positives=fp,
        category_accuracy=category_accuracy,
        ece=round(expected_calibration_error(np.maximum(confidence, 1 - confidence), pred == y), 4) if confidence is not None else None,
        latency_ms=percentiles_ms(latencies_s),
        confusion={"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    )


def score(rows: list[ResearchRow], predictions: list[ResearchClassification], latencies_s: list[float],
          *, calibrated: bool) -> EvalReport:
    """Accuracy, P/R/F1 and FPR of the returned ``needs_research``. ECE is the calibration of the model's own call:
    ``p`` = P(search needed), recovered from ``confidence`` (p when the answer is yes, 1 − p when no), against
    ``p >= 0.5``; the "unsure, so search" policy above it changes the decision, not the probability."""
    with_cat = [(r, c) for r, c in zip(rows, predictions) if r.category is not None]
    category_accuracy = round(sum(r.category == c.category for r, c in with_cat) / len(with_cat), 4) if with_cat else None
    y = np.array([r.needs_research for r in rows])
    report = binary_report(y, np.array([c.needs_research for c in predictions]), None, latencies_s, category_accuracy)
    if not calibrated:
        return report
    p = np.array([c.confidence if c.needs_research else 1 - c.confidence for c in predictions])
    ece = expected_calibration_error(np.maximum(p, 1 - p), (p >= 0.5) == y)
    return dataclasses.replace(report, ece=round(ece, 4))


def per_source(rows: list[ResearchRow], predictions: list[ResearchClassification]) -> dict[str, dict[str, Any]]:
    """Accuracy, category accuracy and false-positive rate per source, so the next error is easy to find."""
    out: dict[str, dict[str, Any]] = {}
    for source in sorted({r.source or "(none)" for r in rows}):
        pairs = [(r, c) for r, c in zip(rows, predictions) if (r.source or "(none)") == source]
        negatives = [c for r, c in pairs if not r.needs_research]
        out[source] = {"n": len(pairs), "accuracy": round(sum(r.needs_research == c.needs_research for r, c in pairs) / len(pairs), 4),
                       "category_accuracy": round(sum(r.category == c.category for r, c in pairs) / len(pairs), 4),
                       "false_positive_rate": round(sum(c.needs_research for c in negatives) / len(negatives), 4) if negatives else None}
    return out


def worst_confusions(rows: list[ResearchRow], predictions: list[ResearchClassification], top: int = 10) -> list[dict[str, Any]]:
    """The most frequent (expected → predicted) category mistakes, with up to three example texts each."""
    mistakes: dict[tuple[str, str], list[str]] = {}
    for r, c in zip(rows, predictions):
        if r.category is not None and r.category != c.category:
            mistakes.setdefault((r.category, c.category), []).append(r.text)
    ranked = sorted(mistakes.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
    return [{"expected": e, "predicted": p, "count": len(texts), "examples": [t[:120] for t in texts[:3]]} for (e, p), texts in ranked]


def evaluate_tone(p_cheerleader: Callable[[str], float], rows: list[Example], threshold: float = 0.5, workers: int = 1) -> dict[str, Any]:
    """Tone head on labelled responses: P/R/F1 of the cheerleader call, ECE, latency per response (``workers``: see
    ``_scored``)."""
    probs, times = _scored(p_cheerleader, [r.text for r in rows], workers)
    p = np.array(probs)
    pred = p >= threshold
    return binary_report(np.array([r.labels["tone"] for r in rows]), pred, np.where(pred, p, 1 - p), times).to_dict()


LATENCY_SAMPLE = 200
"""Rows timed one call at a time when the rest are scored by several workers (``_scored``): enough for a p95."""


def _scored(one: Callable[[T], R], items: list[T], workers: int = 1) -> tuple[list[R], list[float]]:
    """Every item's score and the seconds per call of ``one`` (NaN where not timed). With ``workers`` > 1 the calls
    run on that many threads (onnxruntime releases the GIL; each call is still one message, as Penny runs it, so
    the scores are the same: batching would not be, an int8 graph quantizes each batch's activations together), and
    ``LATENCY_SAMPLE`` evenly spaced items are first timed one by one on an otherwise idle scorer. Why: the build
    scores the held-out sets (19,670 XED lines, 2,265 Spiral-Bench replies) within a 25-minute budget."""
    if workers <= 1:
        return _timed(one, items)
    sample = sorted({i * len(items) // LATENCY_SAMPLE for i in range(min(LATENCY_SAMPLE, len(items)))})
    _, sample_times = _timed(one, [items[i] for i in sample])
    times = [float("nan")] * len(items)  # aligned with the items, so latencies per group stay possible
    for i, t in zip(sample, sample_times):
        times[i] = t
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, items)), times


def _timed(fn: Callable[[T], R], items: list[T], warmup: int = 5) -> tuple[list[R], list[float]]:
    """Call ``fn`` on every item (after ``warmup`` untimed calls); results and seconds per call."""
    for item in items[:warmup]:
        fn(item)
    out, times = [], []
    for item in items:
        start = time.perf_counter()
        out.append(fn(item))
        times.append(time.perf_counter() - start)
    return out, times


def evaluate_mood(probabilities: Callable[[list[str]], np.ndarray], rows: list[Example], workers: int = 1) -> dict[str, Any]:
    """Mood head on labelled messages (``labels["mood"]``: the index in ``MOODS``), one message per call as the context
    step runs it (``workers``: see ``_scored``): accuracy, macro-F1, per-class P/R/F1, ECE of the top mood, latency per
    message, and the majority class ``neutral`` as the baseline."""
    from penny_slm.results import MOODS
    from penny_slm.training.evaluate_context import MAJORITY_MOOD, mood_block

    probs, times = _scored(lambda text: probabilities([text])[0], [r.text for r in rows], workers)
    p = np.array(probs)
    gold = [MOODS[r.labels["mood"]] for r in rows]
    pred = [MOODS[i] for i in p.argmax(1)]
    correct = np.array([g == q for g, q in zip(gold, pred, strict=True)])
    return {**mood_block(gold, pred), "ece": round(expected_calibration_error(p.max(1), correct, low=1 / len(MOODS)), 4),
            "latency_ms": percentiles_ms(times), "baseline": mood_block(gold, [MAJORITY_MOOD] * len(gold))}


def evaluate_research(classify: Callable[[str], ResearchClassification], rows: list[ResearchRow]) -> dict[str, Any]:
    """The ``eval research`` JSON: the model's metrics at top level, the keyword baseline under ``baseline``."""
    texts = [r.text for r in rows]
    predictions, latencies = _timed(classify, texts)
    base_predictions, base_latencies = _timed(keyword_classify, texts)
    model = score(rows, predictions, latencies, calibrated=True)
    baseline = score(rows, base_predictions, base_latencies, calibrated=False)
    fp_reduction = 1 - model.false_positives / baseline.false_positives if baseline.false_positives else None
    result = model.to_dict() | {
        "baseline": baseline.to_dict(),
        "false_positive_reduction": round(fp_reduction, 4) if fp_reduction is not None else None,
        "per_source": per_source(rows, predictions),
        "worst_confusions": worst_confusions(rows, predictions),
    }
    result["_predictions"] = predictions  # for the optional report; stripped before JSON output
    return result


def write_report(result: dict[str, Any], rows: list[ResearchRow], out_dir: Path) -> Path:
    """Markdown report with a confusion matrix table, per-category accuracy, misses, and two PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    predictions: list[ResearchClassification] = result["_predictions"]
    conf = np.array([c.confidence for c in predictions])
    conf = np.maximum(conf, 1 - conf)
    correct = np.array([c.needs_research == r.needs_research for c, r in zip(predictions, rows)])

    edges = np.linspace(0.5, 1.0, N_BINS + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1]), 0, N_BINS - 1)
    centers, accs, counts = [], [], []
    for b in range(N_BINS):
        mask = bins == b
        if mask.any():
            centers.append(float(conf[mask].mean()))
            accs.append(float(correct[mask].mean()))
            counts.append(int(mask.sum()))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centers, accs, "o-", label="classifier")
    for x, yv, n in zip(centers, accs, counts):
        ax.annotate(str(n), (x, yv), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")
    ax.set(xlabel="confidence", ylabel="accuracy", title=f"Reliability (ECE {result['ece']:.3f})", xlim=(0.5, 1.01), ylim=(0, 1.05))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "reliability.png", dpi=120)
    plt.close(fig)

    labeled = [(r, c) for r, c in zip(rows, predictions) if r.category is not None]
    matrix = np.zeros((len(CATEGORIES), len(CATEGORIES)), dtype=int)
    for r, c in labeled:
        matrix[CATEGORIES.index(r.category), CATEGORIES.index(c.category)] += 1
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(CATEGORIES)), CATEGORIES, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(CATEGORIES)), CATEGORIES, fontsize=7)
    for i in range(len(CATEGORIES)):
        for j in range(len(CATEGORIES)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7)
    ax.set(xlabel="predicted", ylabel="labelled", title="Category confusion")
    fig.tight_layout()
    fig.savefig(out_dir / "category_confusion.png", dpi=120)
    plt.close(fig)

    cm, bcm = result["confusion"], result["baseline"]["confusion"]
    lines = [
        "# Research classifier evaluation", "",
        f"{result['n']} rows. Model vs the keyword baseline on the same rows.", "",
        "| metric | model | keyword baseline |", "|---|---|---|",
        *[f"| {k} | {result[k]} | {result['baseline'][k]} |" for k in
          ("accuracy", "precision", "recall", "f1", "false_positive_rate", "false_positives", "category_accuracy")],
        "| latency p50 / p95 / p99 (ms) | " + " | ".join(
            " / ".join(str(r["latency_ms"][q]) for q in ("p50", "p95", "p99")) for r in (result, result["baseline"])) + " |",
        "", f"False-positive reduction vs baseline: {result['false_positive_reduction']}. ECE: {result['ece']}.", "",
        "## Confusion matrix (needs_research)", "",
        "| | predicted yes | predicted no |", "|---|---|---|",
        f"| labelled yes | {cm['tp']} | {cm['fn']} |", f"| labelled no | {cm['fp']} | {cm['tn']} |", "",
        f"Baseline: tp {bcm['tp']}, fp {bcm['fp']}, tn {bcm['tn']}, fn {bcm['fn']}.", "",
        "![reliability](reliability.png)", "", "![category confusion](category_confusion.png)", "",
        "## Misclassified", "", "| text | labelled | predicted | confidence | reasoning |", "|---|---|---|---|---|",
        *[f"| {r.text.replace('|', '/')} | {r.needs_research} | {c.needs_research} | {c.confidence:.2f} | {c.reasoning.replace('|', '/')} |"
          for r, c in zip(rows, predictions) if r.needs_research != c.needs_research],
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


ABSOLUTE: tuple[ViolationName, ...] = ("coffee_reference", "asterisk_action", "excess_exclamation", "caps_enthusiasm", "name_overuse")


@dataclass(frozen=True, slots=True)
class GuardRow:
    """One guard evaluation row: a response and the violations it is labelled with."""
    text: str
    violations: frozenset[ViolationName]
    source: str = ""


def load_guard_jsonl(path: str | Path) -> list[GuardRow]:
    """Read ``{"text": str, "violations": [str]}`` lines; a bad line raises ``InputError`` naming it."""
    valid = set(get_args(ViolationName))
    rows = []
    for n, obj in jsonl_objects(path):
        text, violations = obj.get("text"), obj.get("violations")
        if not isinstance(text, str) or not isinstance(violations, list) or not set(violations) <= valid:
            raise InputError(f"{path}:{n}: need 'text' (string) and 'violations' (list of {', '.join(sorted(valid))})")
        rows.append(GuardRow(text, frozenset(violations)))
    return rows


def evaluate_guard(guard: Callable[[str], GuardResult], rows: list[GuardRow]) -> dict[str, Any]:
    """The ``eval guard`` JSON: per-violation precision/recall, absolute recall, clean false-positive rate, latency."""
    results, times = _timed(guard, [r.text for r in rows])
    per: dict[str, dict[str, float | None]] = {}
    for name in get_args(ViolationName):
        tp = sum(name in r.violations and name in g.violations_detected for r, g in zip(rows, results))
        fp = sum(name not in r.violations and name in g.violations_detected for r, g in zip(rows, results))
        fn = sum(name in r.violations and name not in g.violations_detected for r, g in zip(rows, results))
        per[name] = {"precision": round(tp / (tp + fp), 4) if tp + fp else None,
                     "recall": round(tp / (tp + fn), 4) if tp + fn else None, "support": tp + fn}
    labelled = [(v, g) for r, g in zip(rows, results) for v in r.violations if v in ABSOLUTE]
    found = sum(v in g.violations_detected for v, g in labelled)
    clean = [(r, g) for r, g in zip(rows, results) if not r.violations]
    leaked = sum(any(v in ABSOLUTE for v in g2.violations_detected) for g2 in (guard(g.rewritten_response) for g in results))
    return {
        "n": len(rows),
        "per_violation": per,
        "absolute_recall": round(found / len(labelled), 4) if labelled else None,
        "clean_false_positive_rate": round(sum(bool(g.violations_detected) for _, g in clean) / len(clean), 4) if clean else None,
        "clean_false_flags": [{"text": r.text[:160], "flagged": list(g.violations_detected)} for r, g in clean if g.violations_detected][:15],
        "clean_false_flags_by_rule": dict(sorted(Counter(v for _, g in clean for v in g.violations_detected).items())),
        "rewritten_with_absolute_violation": leaked,
        "per_source": _guard_per_source(rows, results),
        "latency_ms": percentiles_ms(times),
    }


def _guard_per_source(rows: list[GuardRow], results: list[GuardResult]) -> dict[str, dict[str, Any]]:
    """Per source: clean responses falsely flagged, and cheerleader_tone precision and recall."""
    out: dict[str, dict[str, Any]] = {}
    for source in sorted({r.source or "(none)" for r in rows}):
        pairs = [(r, g) for r, g in zip(rows, results) if (r.source or "(none)") == source]
        clean = [g for r, g in pairs if not r.violations]
        tp = sum("cheerleader_tone" in r.violations and "cheerleader_tone" in g.violations_detected for r, g in pairs)
        flagged = sum("cheerleader_tone" in g.violations_detected for _, g in pairs)
        actual = sum("cheerleader_tone" in r.violations for r, _ in pairs)
        out[source] = {"n": len(pairs), "clean": len(clean),
                       "clean_false_positive_rate": round(sum(bool(g.violations_detected) for g in clean) / len(clean), 4) if clean else None,
                       "cheerleader_precision": round(tp / flagged, 4) if flagged else None,
                       "cheerleader_recall": round(tp / actual, 4) if actual else None}
    return out


class SentenceEmbedder:
    """Mean-pooled all-MiniLM-L6-v2 sentence vectors (torch, eval time only) for "meaning kept".

    Each distinct text is embedded once (the rewriter's evaluation asks for the same sources and references three
    times), in batches of similar length: one batch of 262 texts padded to the longest took 48 of the evaluation's
    130 s (issue 23). Padding changes a vector by about 1e-7, not the metrics."""

    def __init__(self, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from penny_slm.compat import base_encoder_dir

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(base_encoder_dir())
        self.model = AutoModel.from_pretrained(base_encoder_dir()).eval()
        self.batch_size = batch_size
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        from penny_slm.training.heads import _mean_pool, _sorted_batches

        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        with self._torch.no_grad():
            for idx, batch in _sorted_batches(self.tokenizer, missing, 256, self.batch_size) if missing else ():
                pooled = _mean_pool(self.model(**batch).last_hidden_state, batch["attention_mask"])
                vectors = self._torch.nn.functional.normalize(pooled, dim=-1).numpy()
                self._vectors.update((missing[i], v) for i, v in zip(idx, vectors))
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def _cosines(embed: Callable[[list[str]], np.ndarray], a: list[str], b: list[str]) -> np.ndarray:
    return np.sum(embed(a) * embed(b), axis=1)


def _rewrite_scores(outputs: list[str], pairs: list[Any], clean_pass: Callable[[str], bool],
                    embed: Callable[[list[str]], np.ndarray], min_cosine: float) -> dict[str, Any]:
    """The issue's rewriter metrics for one set of outputs. ``pass``: the rules and the tone head find
    nothing. Meaning kept, two ways: MiniLM cosine ≥ ``min_cosine`` to the original response (the
    issue's definition; a perfect rewrite of a heavily decorated response scores low here, so the
    reference rewrites are scored too, as its ceiling) and to the reference rewrite."""
    violating = [i for i, p in enumerate(pairs) if p.families]
    clean = [i for i, p in enumerate(pairs) if not p.families]
    cos_source = _cosines(embed, [pairs[i].source for i in violating], [outputs[i] for i in violating])
    cos_target = _cosines(embed, [pairs[i].target for i in violating], [outputs[i] for i in violating])
    passed = np.array([clean_pass(outputs[i]) for i in violating])

    def rate(mask: np.ndarray) -> float | None:
        return round(float(np.mean(mask)), 4) if mask.size else None

    return {
        "pass_rate": rate(passed),
        "meaning_kept_rate": rate(cos_source >= min_cosine),
        "pass_rate_meaning_kept": rate(passed & (cos_source >= min_cosine)),
        "pass_rate_reference_kept": rate(passed & (cos_target >= min_cosine)),
        "cosine_to_source_median": round(float(np.median(cos_source)), 4),
        "cosine_to_target_median": round(float(np.median(cos_target)), 4),
        "exact_target_rate": rate(np.array([outputs[i] == pairs[i].target for i in violating])),
        "clean_unchanged": rate(np.array([outputs[i] == pairs[i].source for i in clean])),
    }


def evaluate_rewriter(guard: Any, pairs: list[Any], embed: Callable[[list[str]], np.ndarray],
                      min_cosine: float = 0.8, deadline_s: float = 30.0) -> dict[str, Any]:
    """The rewriter on held-out pairs, fed exactly as the guard feeds it: the rule-fixed response.

    Top level: the model alone on every pair (its own metrics, the registry's gate reads these), plus
    ``accepted_rate``: the guard's full re-check (content kept, nothing invented) accepts the rewrite.
    ``guard_path``: ``guard.predict`` end to end (rules → tone head → rewrite only for residual tone →
    re-check → rule-fixed text if discarded), which is what a user sees. ``reference``: the reference
    rewrites scored the same way (the ceiling of each metric). ``guard`` has the candidate rewriter loaded."""
    from penny_slm.rules.prohibitions import detect, fix

    persona, rewriter = guard.persona, guard.rewriter

    def clean_pass(text: str) -> bool:
        return not detect(text, persona) and guard.tone.p_cheerleader(text) < guard.tone_threshold

    inputs = [fix(p.source, persona)[0] for p in pairs]
    rewrites = [rewriter.rewrite(text, deadline_s=deadline_s) for text in inputs]
    outputs = [r.text for r in rewrites]
    violating = [i for i, p in enumerate(pairs) if p.families]
    accepted = [guard.accepts_rewrite(inputs[i], outputs[i]) for i in violating]
    guarded, guard_s = _timed(guard.predict, [p.source for p in pairs], warmup=0)
    gens = [r.generation for r in rewrites]
    return {
        "n": len(pairs), "n_violating": len(violating), "n_clean": len(pairs) - len(violating),
        **_rewrite_scores(outputs, pairs, clean_pass, embed, min_cosine),
        "accepted_rate": round(float(np.mean(accepted)), 4),
        "latency": {
            "first_token_ms": percentiles_ms([g.first_token_s for g in gens]),
            "total_ms": percentiles_ms([g.seconds for g in gens]),
            "tokens_per_s_median": round(float(np.median([g.tokens_per_s for g in gens if g.n_tokens > 1])), 1),
        },
        "stop_reasons": {r: sum(g.stop_reason == r for g in gens) for r in sorted({g.stop_reason for g in gens})},
        "guard_path": {
            **_rewrite_scores([g.rewritten_response for g in guarded], pairs, clean_pass, embed, min_cosine),
            "rewrite_status": _status_counts([g.rewrite_status for g in guarded]),
            "latency_ms": percentiles_ms(guard_s),
        },
        "reference": _rewrite_scores([p.target if p.families else p.source for p in pairs], pairs, clean_pass, embed,
                                     min_cosine),
        "failures": [{"input": inputs[i], "rewrite": outputs[i], "accepted": ok}
                     for i, ok in zip(violating, accepted) if not ok][:20],
        "clean_changed": [{"input": inputs[i], "rewrite": outputs[i]} for i, p in enumerate(pairs)
                          if not p.families and outputs[i] != p.source][:20],
    }


def _status_counts(statuses: list[str]) -> dict[str, int]:
    """``discarded: rewrite dropped content (3/5 ...)`` → ``discarded: rewrite dropped content``."""
    heads = [s.split(" (")[0] for s in statuses]
    return {h: heads.count(h) for h in sorted(set(heads))}


def evaluate_attachment(p_over_attachment: Callable[[str, str], float], rows: list[Any], threshold: float,
                        workers: int = 1) -> dict[str, Any]:
    """Over-attachment head on labelled messages (``{text, role, over_attachment}``): n, precision, recall, F1,
    false-positive rate (the ``eval attachment`` contract), accuracy, ECE, latency per message, and the same figures
    per role and per source when there is more than one (``workers``: see ``_scored``)."""
    probs, times = _scored(lambda r: p_over_attachment(r.text, r.role), rows, workers)
    p = np.array(probs)
    y = np.array([r.over_attachment for r in rows])
    pred = p >= threshold
    out = binary_report(y, pred, np.where(pred, p, 1 - p), times).to_dict()
    out.pop("category_accuracy")
    out["threshold"] = round(threshold, 4)
    for key, name in (("per_role", "role"), ("per_source", "source")):
        groups = sorted({getattr(r, name) for r in rows})
        if len(groups) > 1:
            out[key] = {}
            for g in groups:
                mask = np.array([getattr(r, name) == g for r in rows])
                part = binary_report(y[mask], pred[mask], None, [t for t, m in zip(times, mask) if m]).to_dict()
                out[key][g] = {k: part[k] for k in ("n", "precision", "recall", "f1", "false_positive_rate", "confusion")}
    return out


def choose_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The decision threshold with the best F1 on development rows (a grid of 0.05 to 0.95 in steps of 0.01; the
    lowest among ties). Used by the over-attachment build on its development split, never on a test part."""
    best_t, best_f1 = 0.5, -1.0
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        pred = p >= t
        tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t
