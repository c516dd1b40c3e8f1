"""Overlap between a file's texts and every text any artifact trains, tunes or calibrates on.

Two texts overlap when, after :func:`normalise` (NFKC, casefold, punctuation dropped, whitespace collapsed),

- they are equal (**exact**), or
- the Jaccard similarity of their sets of character 5-grams is at least 0.8 (**near**). A normalised text
  shorter than 5 characters is its own single shingle, so it can only match exactly; an empty one never matches.

Near pairs are found with MinHash and LSH banding, then every candidate is verified with the exact Jaccard,
so a reported pair is never an estimate. Parameters: 100 seeded hash functions (multiply-shift over a 64-bit
hash of each shingle), 20 bands of 5 rows. A pair at Jaccard ``s`` becomes a candidate with probability
``1 - (1 - s**5)**20``: 0.9996 at 0.8, 0.99999 at 0.85, 0.47 at 0.5 (verified away), 0.006 at 0.2.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from penny_slm.training import importers
from penny_slm.jsonl import jsonl_objects
from penny_slm.training.datasets import data_dir, drop_overlapping
from penny_slm.training.sources import TASKS, Manifest

SHINGLE = 5
THRESHOLD = 0.8
BANDS = 20
BAND_ROWS = 5
NUM_PERM = BANDS * BAND_ROWS
SEED = 20251204
CHUNK_CHARS = 250_000  # characters hashed per numpy batch: small enough to stay in the CPU cache (2-3x faster)

U64 = npt.NDArray[np.uint64]
TrainingText = tuple[str, str, str]
"""(artifact or task, origin, text): ``("research", "research_train.jsonl", "btc price now")``."""


@functools.cache
def _punctuation_table() -> dict[int, None]:
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def normalise(text: str) -> str:
    """NFKC, casefold, drop punctuation (Unicode category P*), collapse whitespace."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_punctuation_table())
    return " ".join(folded.split())


def shingles(norm: str) -> set[str]:
    """Character 5-grams of a normalised text (the text itself when it is shorter)."""
    if len(norm) < SHINGLE:
        return {norm} if norm else set()
    return {norm[i:i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two shingle sets (0.0 when both are empty)."""
    return len(a & b) / len(a | b) if a or b else 0.0


# ------------------------------------------------------------------------------------------------ MinHash

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_POLY = np.uint64(0x100000001B3)


def _mix(x: U64) -> U64:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@functools.cache
def _permutations() -> tuple[U64, U64]:
    rng = np.random.default_rng(SEED)
    a = rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    b = rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
    return a, b


def _padded(norm: str) -> str:
    # a short text becomes one shingle: itself, padded with a code point normalise() never leaves in
    return norm.ljust(SHINGLE, "\x00")


def signatures(norms: Sequence[str]) -> npt.NDArray[np.uint32]:
    """MinHash signatures, shape (len(norms), NUM_PERM), of non-empty normalised texts.

    Each text's code points are hashed five at a time (a polynomial, then ``_mix``); hash function ``k`` is
    ``(a_k * h + b_k) >> 32`` with a seeded odd ``a_k``; a signature entry is its minimum over the text's shingles.
    """
    a, b = _permutations()
    out = np.empty((len(norms), NUM_PERM), dtype=np.uint32)
    for lo, hi in _chunks(norms):
        chunk = [_padded(t) for t in norms[lo:hi]]
        cps = np.frombuffer("".join(chunk).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        lengths = np.fromiter((len(t) for t in chunk), dtype=np.int64, count=len(chunk))
        h = cps[:-4].copy()
        for j in range(1, SHINGLE):
            h = h * _POLY + cps[j:len(cps) - SHINGLE + 1 + j]
        h = _mix(h)
        n_windows = lengths - (SHINGLE - 1)
        text_starts = np.cumsum(lengths) - lengths
        seg_starts = np.cumsum(n_windows) - n_windows
        within = np.arange(int(n_windows.sum()), dtype=np.int64) - np.repeat(seg_starts, n_windows)
        window = h[np.repeat(text_starts, n_windows) + within]
        block, scratch, shift = out[lo:lo + len(chunk)], np.empty_like(window), np.uint64(32)
        for k in range(NUM_PERM):  # in place: the windows are the bulk of the work (3 ns per window and function)
            np.multiply(window, a[k], out=scratch)
            np.add(scratch, b[k], out=scratch)
            np.right_shift(scratch, shift, out=scratch)
            block[:, k] = np.minimum.reduceat(scratch, seg_starts)
    return out


def _chunks(norms: Sequence[str]) -> Iterator[tuple[int, int]]:
    lo, chars = 0, 0
    for i, norm in enumerate(norms):
        chars += len(norm)
        if chars >= CHUNK_CHARS:
            yield lo, i + 1
            lo, chars = i + 1, 0
    if lo < len(norms):
        yield lo, len(norms)


def band_keys(sig: npt.NDArray[np.uint32]) -> U64:
    """One 64-bit key per (text, band): equal band values give equal keys (a rare collision only adds a candidate)."""
    keys = np.zeros((sig.shape[0], BANDS), dtype=np.uint64)
    for band in range(BANDS):
        key = np.zeros(sig.shape[0], dtype=np.uint64)
        for j in range(BAND_ROWS):
            key = _mix(key * _POLY + sig[:, band * BAND_ROWS + j].astype(np.uint64))
        keys[:, band] = key
    return keys


# ------------------------------------------------------------------------------------------------ report


@dataclass(frozen=True, slots=True)
class Collision:
    """One checked text that overlaps training text: the best match and every origin that holds it."""

    index: int  # position in the checked sequence
    text: str
    kind: Literal["exact", "near"]
    similarity: float  # Jaccard of character 5-gram sets (1.0 for exact)
    training_text: str
    origins: tuple[str, ...]  # "artifact: origin", e.g. "research: research_train.jsonl"


@dataclass(frozen=True, slots=True)
class OverlapReport:
    """What ``data check`` found: the texts checked, against how many training texts, and every exact and near collision.
    """
    checked: int
    training_texts: int  # distinct normalised training texts
    exact: tuple[Collision, ...]
    near: tuple[Collision, ...]
    threshold: float = THRESHOLD

    @property
    def clean(self) -> bool:
        """True when nothing overlaps."""
        return not self.exact and not self.near

    def by_origin(self) -> dict[str, int]:
        """Checked texts colliding with each origin."""
        counts: dict[str, int] = defaultdict(int)
        for c in (*self.exact, *self.near):
            for origin in c.origins:
                counts[origin] += 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self, examples: int = 10) -> dict[str, Any]:
        """The report as JSON, with its definition of overlap and at most ``examples`` collisions of each kind."""
        def ex(c: Collision) -> dict[str, Any]:
            return {"index": c.index, "text": c.text, "similarity": round(c.similarity, 4),
                    "training_text": c.training_text, "origins": list(c.origins)}
        return {"checked": self.checked, "training_texts": self.training_texts,
                "definition": {"normalise": "NFKC, casefold, punctuation dropped, whitespace collapsed",
                               "near": f"Jaccard of character {SHINGLE}-gram sets >= {self.threshold}",
                               "minhash": {"permutations": NUM_PERM, "bands": BANDS, "rows": BAND_ROWS, "seed": SEED}},
                "exact": {"count": len(self.exact), "examples": [ex(c) for c in self.exact[:examples]]},
                "near": {"count": len(self.near), "examples": [ex(c) for c in self.near[:examples]]},
                "by_origin": self.by_origin()}


def find_overlap(texts: Sequence[str], training: Iterable[TrainingText], threshold: float = THRESHOLD) -> OverlapReport:
    """Exact and near overlaps of each of ``texts`` with ``training``; a text with an exact match is not also near."""
    origins: dict[str, list[str]] = defaultdict(list)
    raw: dict[str, str] = {}
    for artifact, origin, text in training:
        norm = normalise(text)
        if norm:
            label = f"{artifact}: {origin}"
            if label not in origins[norm]:
                origins[norm].append(label)
            raw.setdefault(norm, text)
    train_norms = list(origins)
    query_norms = [normalise(t) for t in texts]

    exact = tuple(Collision(i, texts[i], "exact", 1.0, raw[q], tuple(origins[q]))
                  for i, q in enumerate(query_norms) if q in origins)
    hit = {c.index for c in exact}
    pending = [i for i, q in enumerate(query_norms) if q and i not in hit]
    near: list[Collision] = []
    if pending and train_norms:
        best = _near(query_norms, pending, train_norms, threshold)
        near = [Collision(i, texts[i], "near", s, raw[train_norms[t]], tuple(origins[train_norms[t]]))
                for i, (s, t) in sorted(best.items())]
    return OverlapReport(len(texts), len(train_norms), exact, tuple(near), threshold)


def _near(query_norms: list[str], pending: list[int], train_norms: list[str], threshold: float) -> dict[int, tuple[float, int]]:
    """Checked index → (Jaccard, training index) of its most similar training text at or above ``threshold``."""
    q_keys = band_keys(signatures([query_norms[i] for i in pending]))
    t_keys = band_keys(signatures(train_norms))
    pairs: set[tuple[int, int]] = set()
    for band in range(BANDS):
        by_key: dict[int, list[int]] = defaultdict(list)
        for row, key in enumerate(q_keys[:, band].tolist()):
            by_key[key].append(row)
        for t in np.nonzero(np.isin(t_keys[:, band], q_keys[:, band]))[0].tolist():
            pairs.update((row, t) for row in by_key[int(t_keys[t, band])])
    q_sets: dict[int, set[str]] = {}
    t_sets: dict[int, set[str]] = {}
    best: dict[int, tuple[float, int]] = {}
    for row, t in sorted(pairs):
        qs = q_sets.setdefault(row, shingles(query_norms[pending[row]]))
        ts = t_sets.setdefault(t, shingles(train_norms[t]))
        if min(len(qs), len(ts)) < threshold * max(len(qs), len(ts)):
            continue  # sizes alone rule out the threshold
        s = jaccard(qs, ts)
        i = pending[row]
        if s >= threshold and s > best.get(i, (0.0, -1))[0]:
            best[i] = (s, t)
    return best


OWN_TEST_FILES: dict[str, str] = {"research": "research_test.jsonl", "guard": "tone_test.jsonl",
                                   "attachment": "attachment_test.jsonl"}
"""Each task's packaged test split: a build drops the imported training rows that overlap it (``splits.py``)."""
UNTRAINED_TASKS = ("formality", "depth")
"""Tasks whose imported rows train nothing: no formality or depth head ships (the one measured tied the rules on
formality and lost on depth, docs/MEASUREMENTS.md), so their rows are not training texts; GoEmotions feeds formality too, and counting it there
would bring back the rows the mood build drops for overlapping XED."""


def training_texts(manifest: Manifest | None = None) -> Iterator[TrainingText]:
    """Every text an artifact trains, tunes or calibrates on: the packaged hand-written and templated files
    (research and tone train/dev/pool, the attachment pool, the rewriter's sources and targets) and the ``train`` rows of every
    cached public source, for every task that trains something (all but ``UNTRAINED_TASKS``), less the imported rows a build drops
    because they equal or nearly equal one of the task's test rows (its held-out sources and its packaged test split,
    as ``splits.py`` does): those train nothing, so checking a held-out file reports no overlap with them."""
    data = data_dir()
    for artifact, names in (("research", ("research_train.jsonl", "research_dev.jsonl", "research_pool.jsonl")),
                            ("tone", ("tone_train.jsonl", "tone_dev.jsonl", "tone_pool.jsonl")),
                            ("attachment", ("attachment_pool.jsonl",))):
        for name in names:
            for _n, obj in jsonl_objects(data / name):
                yield artifact, name, str(obj["text"])
    for _n, obj in jsonl_objects(data / "rewriter_train.jsonl"):
        yield "rewriter", "rewriter_train.jsonl (source)", str(obj["source"])
        yield "rewriter", "rewriter_train.jsonl (target)", str(obj["target"])
    tasks = tuple(t for t in TASKS if t not in UNTRAINED_TASKS)
    held_out = importers.rows_by_task(tasks, ("test",), manifest)
    for task, (imported, _provenance) in importers.rows_by_task(tasks, ("train",), manifest).items():
        test_texts = [str(r["text"]) for r in held_out[task][0]]
        if task in OWN_TEST_FILES:
            test_texts += [str(obj["text"]) for _n, obj in jsonl_objects(data / OWN_TEST_FILES[task])]
        for row in drop_overlapping(imported, test_texts):
            yield task, f"source {row['source']}", str(row["text"])
