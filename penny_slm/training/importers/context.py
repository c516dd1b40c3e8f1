"""Importers for the context tracker: slang (genplus, held out) and, for the mood head, Ekman moods (``anger, disgust, fear, joy, sadness, surprise,
neutral``) from two public emotion corpora, one to train on and one held out at the source level.

- **goemotions** (Apache-2.0; Reddit comments; train and dev splits only, the reserved test split is not pinned):
  the repository's own Ekman grouping (``data/ekman``). A comment keeps its label only when it has exactly one
  Ekman label (multi-label rows are dropped, not guessed). Rows whose text equals a text of the reserved test
  split are dropped: ``data/labels/goemotions_test_overlap.json`` holds the sha1 of each such text (36 texts,
  79 train and 10 dev rows; computed once from the test split, which is used for nothing else).
- **xed** (CC-BY-4.0; English movie subtitles, Plutchik's eight emotions; held out for testing): a line keeps its
  label only when it carries exactly one emotion that has an Ekman counterpart (anger 1, disgust 3, fear 4, joy 5,
  sadness 6, surprise 7; anticipation 2 and trust 8 have none); ``neu_en.txt`` lines are ``neutral``. The text is
  detokenised ("don 't ." → "don't.").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

Row = dict[str, object]
EKMAN = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
XED_TO_EKMAN = {"1": "anger", "3": "disgust", "4": "fear", "5": "joy", "6": "sadness", "7": "surprise"}
GOEMOTIONS_SPLITS = ("data/ekman/train.tsv", "data/ekman/dev.tsv")
GOEMOTIONS_FORMALITY = 0.2
"""The formality prior of a Reddit comment: the informal anchor of the formality dimension (``importers.register``)."""


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def goemotions_test_overlap(labels_dir: Path | None = None) -> frozenset[str]:
    """sha1 of the GoEmotions train/dev texts that also occur in its reserved test split."""
    if labels_dir is None:
        from penny_slm.training.datasets import data_dir

        labels_dir = data_dir() / "labels"
    return frozenset(json.loads((labels_dir / "goemotions_test_overlap.json").read_text(encoding="utf-8")))


def goemotions(files: dict[str, Path], overlap: frozenset[str] | None = None) -> Iterator[Row]:
    """Single-label Ekman rows of the train and dev splits, test-split texts dropped (module docstring)."""
    overlap = goemotions_test_overlap() if overlap is None else overlap
    labels = files["data/ekman/labels.txt"].read_text(encoding="utf-8").split()
    if tuple(labels) != EKMAN:
        raise ValueError(f"goemotions: data/ekman/labels.txt is {labels}, expected {list(EKMAN)}")
    for split in GOEMOTIONS_SPLITS:
        for line in files[split].read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) < 2 or not parts[0].strip() or _sha1(parts[0]) in overlap:
                continue
            ids = parts[1].split(",")
            if len(ids) != 1:
                continue
            yield {"text": parts[0].strip(), "mood": labels[int(ids[0])], "split": split.split("/")[-1][:-4],
                   "formality": GOEMOTIONS_FORMALITY}


_SPACE_BEFORE = re.compile(r"\s+(?=[.,!?;:%)\]]|'(?:s|re|ve|ll|d|m|t)\b|n't\b)")


def detokenise(text: str) -> str:
    """Undo XED's tokenised spacing: no space before punctuation or a contraction (``'s``, ``n't``), none after an opening bracket."""
    return re.sub(r"([(\[])\s+", r"\1", _SPACE_BEFORE.sub("", text)).strip()


def xed(files: dict[str, Path]) -> Iterator[Row]:
    """Single-emotion lines with an Ekman counterpart, and the neutral lines (module docstring)."""
    for line in files["AnnotatedData/en-annotated.tsv"].read_text(encoding="utf-8").splitlines():
        text, _, ids = line.rpartition("\t")
        codes = [c.strip() for c in ids.split(",") if c.strip()]
        text = detokenise(text)
        if len(codes) == 1 and codes[0] in XED_TO_EKMAN and re.search(r"[A-Za-z]", text):
            yield {"text": text, "mood": XED_TO_EKMAN[codes[0]]}
    for line in files["AnnotatedData/neu_en.txt"].read_text(encoding="utf-8").splitlines():
        _, _, text = line.partition("\t")
        text = detokenise(text)
        if re.search(r"[A-Za-z]", text):
            yield {"text": text, "mood": "neutral"}


def genplus(files: dict[str, Path]) -> Iterator[Row]:
    """GenPlus-Translator (MIT; glosses CC BY-SA 4.0; held out for slang and formality): each original sentence with
    no slang (``"slang": []``) and each synthetic Gen-Z rewrite with the vocabulary terms it contains, found again by
    case-insensitive word-boundary match (the stored ``terms`` are substring matches: "bet" in "better"), the
    convention's exclusions (``rules.slang.NOT_SLANG``) removed. A rewrite with no vocabulary term left carries no
    slang label: its slang is outside the vocabulary, so neither label would be true.

    Formality as pairs: the original is ``"formality": 1`` and its rewrite ``0`` with the same ``"pair"``, which
    says only that the original is the more formal of the two (``eval context`` reports paired accuracy)."""
    from penny_slm.rules.slang import NOT_SLANG, term_pattern

    vocab = sorted({str(v["word"]).lower() for v in json.loads(files["vocabulary.json"].read_text(encoding="utf-8"))}
                   - NOT_SLANG)
    pattern = term_pattern(tuple(vocab))
    for i, pair in enumerate(json.loads(files["data/generated-10000.json"].read_text(encoding="utf-8"))):
        yield {"text": pair["original"], "slang": [], "formality": 1.0, "pair": f"genplus-{i}"}
        terms = [m.group(0) for m in pattern.finditer(pair["translated"])]
        yield {"text": pair["translated"], "formality": 0.0, "pair": f"genplus-{i}"} | ({"slang": terms} if terms else {})


BY_SOURCE = {"goemotions": goemotions, "xed": xed, "genplus": genplus}
