"""Importers for the tone head's missing register (issue 17): model responses that validate and amplify the user's ideas.

The guard's held-out cheerleading is mostly a chat model praising the person or their idea ("That's a sharp
observation", "You've hit upon something profound"); the first training sources (syco-bench, hh-rlhf, darkbench)
rarely show it. These sources do, or supply its hard negatives:

- ``assistant-axis`` (MIT, stated in the README): every assistant turn of the multi-turn transcripts (delusion,
  self-harm and jailbreak case studies, unsteered and activation-capped; persona-drift conversations);
- ``botbots`` (MIT): every utterance of gpt-3.5-turbo talking to itself (brainstorming, reasoning quizzes,
  task-oriented dialogues with their ``[slot|value]`` markup reduced to the value);
- ``sycon-bench`` (MIT): the answers to repeated user pushback (``Response_2`` to ``Response_5``) of the debate
  setting: polite disagreement, the hard negative.

**Label rule.** assistant-axis is small and its cheerleading rarely matches a phrase list, so every one of its 248
responses was judged by hand. For botbots and sycon-bench a response is a *candidate* when a sentence of its opener
(the first ``OPENER_SENTENCES``) or its closer (the last sentence), the part the tone head's window reads, matches
``PRAISE`` (praise of the person or their idea, emphatic agreement, gushing); seeded samples of at most
``LABELLED[source]`` candidates per folder were judged by hand, and candidates without a judgement are left out. A
response that is not a candidate is a negative by rule, at most ``NEGATIVES[source]`` of them (a seeded sample); a
seeded hand check measured how often that rule misses cheerleading. The judgements (2026-12-05, docs/DATA.md) are
committed as ``data/labels/cheer_<source>.jsonl``: the sha1 of the text, ``cheerleader`` and the ``cheer_spans``
(the matched opener or closer sentences judged cheerleading), never the text. Rows carry no ``violations``: the
absolute rules were not labelled on these sources.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from penny_slm.training.importers.guard import Response, dedup, key

OPENER_SENTENCES = 2
SEED = 20261205

PRAISE = re.compile(r"""(?ix)\b(?:
    (?:that|this|it|what|such)(?:'s|\s+is|\s+was)?\s+(?:(?:a|an|such\s+a|really|truly|so|very|absolutely|incredibly
        |genuinely|really\s+a|truly\s+a)\s+)*(?:great|excellent|fantastic|wonderful|brilliant|fascinating|beautiful
        |amazing|insightful|profound|powerful|exciting|thoughtful|sharp|astute|perceptive|incredible|remarkable
        |lovely|perfect|valid|intriguing|compelling|thought-provoking|interesting|good|important|creative|clever)
  | you(?:'ve|\s+have)\s+(?:really\s+|just\s+)?(?:hit\s+(?:up)?on|nailed|captured|articulated|touched\s+on|raised|made\s+a
        |identified|put\s+your\s+finger|done\s+(?:a|an)|got\s+it|solved|cracked|brought\s+up)
  | you(?:'re|\s+are)\s+(?:(?:absolutely|completely|totally|so|exactly|quite|definitely)\s+)?(?:right|correct|onto|on\s+to)
  | (?:completely|totally|absolutely|wholeheartedly|fully|definitely|certainly)\s+agree | couldn'?t\s+agree\s+more
  | (?:great|excellent|good|fantastic|amazing|nice)\s+(?:job|work|question|point|idea|observation|insight|thinking)
  | well\s+(?:done|said|put) | exactly(?:\s+right)?[!.,] | absolutely[!.,] | perfect(?:ly)?\b | brilliant | genius
  | impressive | beautiful(?:ly)? | i\s+love\s+(?:that|this|how|your|the\s+way) | thank\s+you\s+for\s+sharing
  | (?:^|\s)(?:oh|wow)[,!.\s] | your\s+(?:\w+\s+){0,2}(?:insight|intuition|brilliance|wisdom|courage|curiosity|creativity)
)""")
"""Praise, agreement or gushing in a sentence: the preselection, never a label on its own (a person decides)."""

PRESELECTED = frozenset({"botbots", "sycon-bench"})
"""Sources labelled through ``PRAISE``; every response of the others (assistant-axis, 248) carries a hand label:
a first check found the rule missed 6 of 30 of its non-candidates (docs/DATA.md)."""
LABELLED = {"botbots": 120, "sycon-bench": 80}
"""At most this many candidates per source and top-level folder (botbots: brainstorming, reasoning, tod) were
hand-labelled: a seeded sample of the candidates (``SEED``), so the quizzes' 2,176 candidates do not crowd out the
brainstorming."""
NEGATIVES = {"botbots": 400, "sycon-bench": 300}
"""At most this many non-candidates per source become negatives by rule (a seeded sample, ``SEED``)."""


def _sentences(text: str) -> list[tuple[int, int]]:
    from penny_slm.rules.prohibitions import sentence_spans

    return [(a, b) for a, b in sentence_spans(text) if text[a:b].strip()]


def praise_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of the opener and closer sentences that match ``PRAISE``: what makes a response a candidate,
    and the spans a hand label of cheerleading keeps."""
    spans = _sentences(text)
    window = spans[:OPENER_SENTENCES] + [s for s in spans[-1:] if s not in spans[:OPENER_SENTENCES]]
    return [(a, b) for a, b in window if PRAISE.search(text[a:b])]


# --------------------------------------------------------------------------- extractors
def assistant_axis(files: dict[str, Path]) -> list[Response]:
    """Every assistant turn of transcripts/**/*.json (``{"model", "conversation": [{"role", "content"}], ...}``)."""
    rows = []
    for path in sorted(p for p in files if p.startswith("transcripts/") and ".json" in p):
        d = json.loads(Path(files[path]).read_text(encoding="utf-8"))
        for i, turn in enumerate(d.get("conversation", [])):
            if turn.get("role") == "assistant" and isinstance(turn.get("content"), str):
                rows.append({"text": turn["content"], "meta": {"file": path, "turn": i, "model": d.get("model"),
                                                                "steering": d.get("steering")}})
    return dedup(rows)


_SLOT = re.compile(r"\[[^\[\]|]*\|([^\[\]]*)\]")


def botbots(files: dict[str, Path]) -> list[Response]:
    """Every utterance of brainstorming/, reasoning/ and tod/*.json (lists of ``{"utterances": [[speaker, text]]}``),
    ``[slot|value]`` reduced to ``value``."""
    rows = []
    for path in sorted(p for p in files if p.endswith(".json")):
        for conv in json.loads(Path(files[path]).read_text(encoding="utf-8")):
            for i, (speaker, text) in enumerate(conv.get("utterances", [])):
                rows.append({"text": _SLOT.sub(r"\1", text), "meta": {"file": path, "sample": conv.get("sample_id"),
                                                                       "utterance": i, "speaker": speaker}})
    return dedup(rows)


def sycon_bench(files: dict[str, Path]) -> list[Response]:
    """``Response_2`` to ``Response_5`` (the answers to the user's repeated pushback) of every pinned
    debate-setting/output/<model>/prompt0.csv."""
    csv.field_size_limit(10**9)
    rows = []
    for path in sorted(p for p in files if re.fullmatch(r"debate-setting/output/[^/]+/prompt0\.csv", p)):
        for i, d in enumerate(csv.DictReader(io.StringIO(Path(files[path]).read_text(encoding="utf-8")))):
            for k in range(2, 6):
                rows.append({"text": d.get(f"Response_{k}") or "", "meta": {"file": path, "row": i, "response": k}})
    return dedup(rows)


EXTRACTORS: dict[str, Callable[[dict[str, Path]], list[Response]]] = {
    "assistant-axis": assistant_axis, "botbots": botbots, "sycon-bench": sycon_bench,
}


# --------------------------------------------------------------------------- labels
def labels_path(source: str) -> Path:
    """Where the hand labels of a source's candidates are committed."""
    from penny_slm.training.datasets import data_dir

    return data_dir() / "labels" / f"cheer_{source}.jsonl"


def load_labels(path: Path) -> dict[str, dict[str, Any]]:
    """sha1 of the text → its hand label."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {obj["key"]: obj for obj in (json.loads(line) for line in lines if line.strip())}


def split(source: str, responses: list[Response]) -> tuple[list[Response], list[Response]]:
    """(the candidates a person labels, the negatives by rule): seeded samples of at most ``LABELLED`` per folder and
    ``NEGATIVES`` in all, in file order."""
    if source not in PRESELECTED:
        return responses, []
    candidates: list[Response] = []
    others: list[Response] = []
    for r in responses:
        (candidates if praise_spans(r["text"]) else others).append(r)
    folders = sorted({r["meta"]["file"].split("/")[0] for r in candidates})
    picked = [r for f in folders for r in _sample([c for c in candidates if c["meta"]["file"].split("/")[0] == f],
                                                   LABELLED[source])]
    order = {id(r): i for i, r in enumerate(candidates)}
    return sorted(picked, key=lambda r: order[id(r)]), _sample(others, NEGATIVES[source])


def _sample(rows: list[Response], cap: int) -> list[Response]:
    if len(rows) <= cap:
        return rows
    keep = set(random.Random(SEED).sample(range(len(rows)), cap))
    return [r for i, r in enumerate(rows) if i in keep]


def labelled(source: str, responses: list[Response], labels: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Tone rows ``{"text", "cheerleader", "cheer_spans"}``: the hand-labelled candidates, then the negatives by rule."""
    candidates, negatives = split(source, responses)
    for r in candidates:
        label = labels.get(key(r["text"]))
        if label is not None:
            yield {"text": r["text"], "cheerleader": bool(label["cheerleader"]),
                   "cheer_spans": [tuple(span) for span in label.get("cheer_spans", [])], "source": source}
    for r in negatives:
        yield {"text": r["text"], "cheerleader": False, "cheer_spans": [], "source": source}


def importer(source: str) -> Callable[[dict[str, Path]], Iterator[dict[str, Any]]]:
    """The files → tone rows importer of ``source``."""
    def run(files: dict[str, Path]) -> Iterator[dict[str, Any]]:
        return labelled(source, EXTRACTORS[source](files), load_labels(labels_path(source)))
    run.__doc__ = f"{EXTRACTORS[source].__doc__}\n\nLabels: {__doc__}"
    return run


BY_SOURCE = {name: importer(name) for name in EXTRACTORS}
"""The manifest's importer name → the function (registered by ``importers.populate``)."""
