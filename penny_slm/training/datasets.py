"""Research dataset: JSONL load + validation, seeded stratified splits, a content hash for provenance.

Files (``penny_slm/training/data/``), see ``docs/DATA.md`` for how each was made:
- ``research_pool.jsonl``   hand-written rows for train/dev
- ``research_train.jsonl``, ``research_dev.jsonl``  pool + template rows, split by ``make_research_splits``
- ``research_test.jsonl``   hand-written separately, different phrasing; never templated
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from penny_slm.errors import InputError
from penny_slm.jsonl import jsonl_objects
from penny_slm.results import CATEGORIES, Category


@dataclass(frozen=True, slots=True)
class ResearchRow:
    """One labelled research-classifier row, from the packaged files or an importer."""
    text: str
    needs_research: bool
    category: Category | None
    source: str = ""  # the public source a row came from (eval reports break figures down by it)


@dataclass(frozen=True, slots=True)
class Example:
    """A training row for any task: text plus one label index per head."""

    text: str
    labels: dict[str, int]


def research_examples(rows: list[ResearchRow]) -> list[Example]:
    """Rows as training examples for the two heads (category as its index in ``CATEGORIES``; none counts as ``general``).
    """
    return [Example(r.text, {"research": int(r.needs_research), "category": CATEGORIES.index(r.category or "general")})
            for r in rows]


def load_tone_jsonl(path: str | Path) -> list[Example]:
    """Read ``{"text", "cheerleader": bool}`` lines into examples for the ``tone`` head (1 = cheerleader)."""
    rows = []
    for n, obj in jsonl_objects(path):
        if not isinstance(obj.get("text"), str) or not isinstance(obj.get("cheerleader"), bool):
            raise InputError(f"{path}:{n}: need 'text' (string) and 'cheerleader' (true/false)")
        rows.append(Example(obj["text"], {"tone": int(obj["cheerleader"])}))
    return rows


def data_dir() -> Path:
    """The packaged data folder (``penny_slm/training/data``), wherever the package is installed."""
    return Path(str(resources.files("penny_slm.training"))) / "data"


def load_research_jsonl(path: str | Path, *, require_category: bool = False) -> list[ResearchRow]:
    """Read ``{"text", "needs_research", "category"?}`` lines; a bad line raises ``InputError`` naming it."""
    rows: list[ResearchRow] = []
    for n, obj in jsonl_objects(path):
        where = f"{path}:{n}"
        text, label, category = obj.get("text"), obj.get("needs_research"), obj.get("category")
        if not isinstance(text, str):
            raise InputError(f"{where}: 'text' must be a string")
        if not isinstance(label, bool):
            raise InputError(f"{where}: 'needs_research' must be true or false")
        if category is None and require_category:
            raise InputError(f"{where}: 'category' is required here")
        if category is not None and category not in CATEGORIES:
            raise InputError(f"{where}: unknown category {category!r}; valid: {', '.join(CATEGORIES)}")
        source = obj.get("source", "")
        if not isinstance(source, str):
            raise InputError(f"{where}: 'source' must be a string")
        rows.append(ResearchRow(text, label, category, source))
    return rows


def research_rows(rows: list[dict[str, Any]]) -> list[ResearchRow]:
    """Imported rows (``importers.rows("research", ...)``) as ``ResearchRow``s."""
    return [ResearchRow(r["text"], r["needs_research"], r["category"], r.get("source", "")) for r in rows]


def is_dev(text: str, fraction: float = 0.1) -> bool:
    """A stable dev split of imported rows by a hash of the text: the same rows on every machine and run."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % 1000 < fraction * 1000


REAL_DEV_SHARE = 0.5
"""Of the rows of sources held out from training: this share (by a hash of the text) is the real-world dev part
(calibration, selection, error analysis), the rest the real-world test part (reported, never used to change
anything). Both come from sources no model trains on."""
T = TypeVar("T")


def held_out_parts(rows: list[T], text: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """(real-world dev part, real-world test part) of held-out rows: a stable split by a hash of the text."""
    return [r for r in rows if is_dev(text(r), REAL_DEV_SHARE)], [r for r in rows if not is_dev(text(r), REAL_DEV_SHARE)]


def rows_hash(rows: list[ResearchRow]) -> str:
    """sha256 over imported rows (text and labels, in order): their part of a build's data fingerprint."""
    digest = hashlib.sha256()
    for r in rows:
        digest.update(json.dumps([r.text, r.needs_research, r.category, r.source]).encode())
    return digest.hexdigest()


def file_hash(*paths: Path) -> str:
    """sha256 over the files' bytes, in order: the training-data fingerprint in every manifest."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


Row = dict[str, object]


def _stratified_split(rows: list[Row], stratum: Callable[[Row], object], dev_fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """Seeded split that keeps every stratum's share in dev (at least one row each)."""
    strata: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        strata[str(stratum(row))].append(row)
    rng = random.Random(seed)
    train: list[Row] = []
    dev: list[Row] = []
    for key in sorted(strata):
        group = strata[key]
        rng.shuffle(group)
        cut = max(1, round(len(group) * dev_fraction))
        dev += group[:cut]
        train += group[cut:]
    rng.shuffle(train)
    rng.shuffle(dev)
    return train, dev


def drop_overlapping(rows: list[dict[str, Any]], test_texts: list[str]) -> list[dict[str, Any]]:
    """``rows`` without any that equals or nearly equals a test row (``overlap``: Jaccard of character 5-grams >= 0.8
    after normalising), so the test split measures generalisation and ``penny-slm data check`` stays clean. Public
    sources repeat lines across sources and splits ("tell me a joke" is in ChatterBot and the packaged test)."""
    if not rows or not test_texts:
        return rows
    from penny_slm.training.overlap import find_overlap

    report = find_overlap([str(r["text"]) for r in rows], [("test", "test split", t) for t in test_texts])
    hits = {c.index for c in (*report.exact, *report.near)}
    return [r for i, r in enumerate(rows) if i not in hits]


def make_research_splits(seed: int = 7, per_family: int = 170, dev_fraction: float = 0.15) -> tuple[int, int]:
    """Regenerate train/dev from the hand-written pool plus template families (stratified, seeded)."""
    from penny_slm.training.research_templates import generate

    pool = [json.loads(line) for line in (data_dir() / "research_pool.jsonl").read_text().splitlines() if line]
    rows = drop_overlapping(pool + generate(per_family, seed), [r.text for r in load_research_jsonl(data_dir() / "research_test.jsonl")])
    train, dev = _stratified_split(rows, lambda r: (r["category"], r["needs_research"]), dev_fraction, seed)
    _write(data_dir() / "research_train.jsonl", train)
    _write(data_dir() / "research_dev.jsonl", dev)
    return len(train), len(dev)


def make_tone_splits(seed: int = 11, per_class: int = 800, dev_fraction: float = 0.15) -> tuple[int, int]:
    """Regenerate tone train/dev from the hand-written pool plus ``tone_templates`` (seeded, class-stratified)."""
    from penny_slm.training.tone_templates import generate

    pool = [json.loads(line) for line in (data_dir() / "tone_pool.jsonl").read_text().splitlines() if line]
    rows = drop_overlapping(pool + generate(per_class, seed), [e.text for e in load_tone_jsonl(data_dir() / "tone_test.jsonl")])
    train, dev = _stratified_split(rows, lambda r: r["cheerleader"], dev_fraction, seed)
    _write(data_dir() / "tone_train.jsonl", train)
    _write(data_dir() / "tone_dev.jsonl", dev)
    return len(train), len(dev)


if __name__ == "__main__":  # python -m penny_slm.training.datasets
    print("research train={} dev={}".format(*make_research_splits()))
    print("tone train={} dev={}".format(*make_tone_splits()))
