"""Importers for the context tracker's formality and technical-depth dimensions (``rules/register.py`` names them the
user's register). No public corpus we may train on rates formality or technical depth per message (the Pavlick &
Tetreault formality ratings are reserved for evaluation), so the training labels are **source priors**: a
documented value per genre, grade or audience, which a regressor can only learn as a ranking. The held-out sources
test exactly that ranking (docs/DATA.md, "Formality and depth").

- **emobank** (CC-BY-SA-4.0; MASC sentences, formality train): the genre's prior from ``EMOBANK_FORMALITY``
  (newspaper and letters formal, fiction and blogs less so); the SemEval-2007 headline rows are dropped (the
  manifest's note: their upstream terms were not verified).
- **arc** (CC-BY-SA-4.0; grade-school science exam questions, depth train): ``0.15 + 0.05 * (grade - 3)`` for
  school grades 3 to 9 (0.15 to 0.45); the answer options are cut off (the question is what a user would ask).
- **pubmedqa** (MIT; questions made from PubMed article titles, depth train): ``PUBMEDQA_DEPTH``; only the
  QUESTION field (the abstracts may be under publisher copyright).
- **cefr-sp-wikiauto** (CC-BY-SA-3.0; Wikipedia sentences with CEFR levels from two English teachers, depth
  **held out**): the mean of the two levels (1 = A1 ... 6 = C2) as ``(mean - 1) / 5``; the text is detokenised.
  CEFR rates how hard a sentence is to read, not how expert its subject is: a proxy, said so wherever a figure is
  quoted.
- **mmlu-levels** (MIT; MMLU test questions of the subjects whose names give a level, depth **probe**): the level
  of the subject as ``MMLU_DEPTH`` (elementary < high school < college < professional: the order is the authors', the
  values only place it on 0-1); only the question column. A depth set levelled by someone else, read by
  ``scripts/register_probe.py``; nothing trains, tunes or selects on it.

GoEmotions' Reddit comments are the informal anchor of formality (``context.GOEMOTIONS_FORMALITY``); GenPlus, held
out, tests formality as pairs (an original sentence against its Gen-Z rewrite: ``context.genplus``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from penny_slm.training.importers.context import detokenise

Row = dict[str, object]

EMOBANK_FORMALITY = {"newspaper": 0.85, "letters": 0.85, "essays": 0.75, "travel-guides": 0.7, "fiction": 0.5,
                     "blog": 0.4}
"""Formality prior per EmoBank (MASC) genre; the SemEval headlines are not imported."""
PUBMEDQA_DEPTH = 0.9
"""Technical depth of a question written from a biomedical article's title (expert audience)."""
MMLU_DEPTH = {"elementary": 0.2, "high_school": 0.4, "college": 0.7, "professional": 0.9}
"""An MMLU subject's level (the prefix of its name) as a depth value; subjects with no level prefix are not read."""


def emobank(files: dict[str, Path]) -> Iterator[Row]:
    """MASC sentences with their genre's formality prior (module docstring)."""
    genre = {}
    for line in files["corpus/meta.tsv"].read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 3:
            genre[parts[0]] = parts[2].strip()
    for record in csv.DictReader(io.StringIO(files["corpus/emobank.csv"].read_text(encoding="utf-8"))):
        prior = EMOBANK_FORMALITY.get(genre.get(record["id"], ""))
        text = " ".join(record["text"].split())
        if prior is not None and sum(c.isalpha() for c in text) >= 3:
            yield {"text": text, "formality": prior}


_OPTIONS = re.compile(r"\s\((?:A|1)\)\s")
"""Where an ARC question's answer options start: "(A) ..." or, in the New York Regents items, "(1) ..."."""


def arc_depth(grade: int) -> float:
    """The depth prior of an ARC question for a school grade (3-9)."""
    return round(0.15 + 0.05 * (min(9, max(3, grade)) - 3), 2)


def arc(files: dict[str, Path]) -> Iterator[Row]:
    """ARC-Easy and ARC-Challenge questions (all three splits: the hold-out is at the source level), options cut off."""
    for path in sorted(files):
        if not path.endswith(".csv"):
            continue
        for record in csv.DictReader(io.StringIO(files[path].read_text(encoding="utf-8"))):
            question = _OPTIONS.split(record["question"])[0].strip()
            if question and record.get("schoolGrade", "").strip().isdigit():
                yield {"text": " ".join(question.split()), "technical_depth": arc_depth(int(record["schoolGrade"]))}


def pubmedqa(files: dict[str, Path]) -> Iterator[Row]:
    """The expert-labelled PubMedQA questions at ``PUBMEDQA_DEPTH``."""
    for item in json.loads(files["data/ori_pqal.json"].read_text(encoding="utf-8")).values():
        question = " ".join(str(item.get("QUESTION", "")).split())
        if question:
            yield {"text": question, "technical_depth": PUBMEDQA_DEPTH}


def cefr_depth(levels: list[int]) -> float:
    """The depth proxy of a CEFR-SP sentence: its two annotators' mean level, 1-6 mapped onto 0-1."""
    return round((sum(levels) / len(levels) - 1) / 5, 3)


def cefr_sp(files: dict[str, Path]) -> Iterator[Row]:
    """Wiki-Auto sentences of CEFR-SP (train, dev and test files: held out as a whole) with their depth proxy."""
    for path in sorted(files):
        if not path.endswith(".txt"):
            continue
        for line in files[path].read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].strip().isdigit() and parts[2].strip().isdigit():
                yield {"text": detokenise(parts[0]), "technical_depth": cefr_depth([int(parts[1]), int(parts[2])])}


def mmlu_levels(files: dict[str, Path]) -> Iterator[Row]:
    """The question of every row of ``data/test/<level>_<subject>_test.csv`` (no header: question, four options,
    answer) at its level's ``MMLU_DEPTH``, with the subject."""
    for path in sorted(files):
        name = path.rsplit("/", 1)[-1]
        level = next((lv for lv in MMLU_DEPTH if name.startswith(lv + "_")), None)
        if level is None or not name.endswith("_test.csv"):
            continue
        for record in csv.reader(io.StringIO(files[path].read_text(encoding="utf-8"))):
            question = " ".join(record[0].split()) if record else ""
            if question:
                yield {"text": question, "technical_depth": MMLU_DEPTH[level], "subject": name[:-len("_test.csv")]}


BY_SOURCE = {"emobank": emobank, "arc": arc, "pubmedqa": pubmedqa, "cefr-sp-wikiauto": cefr_sp, "mmlu-levels": mmlu_levels}
