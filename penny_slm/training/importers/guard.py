"""Importers for the guard: real LLM responses from public evaluation and chat datasets, hand-labelled.

Each ``<source>(files)`` extractor returns the source's assistant responses (``{"text", "context", "meta"}``,
deduplicated by text, in file order) exactly as the hand labels were made (2026-12-04, docs/DATA.md):
syco-bench (MIT-0) every model answer; hh-rlhf harmless-base test (MIT) the final Assistant turn; darkbench
(MIT) the generated replies; FastChat MT-bench / Vicuna-bench answers (Apache-2.0; the alpaca-13b files are not
pinned); spiral-bench (MIT) every assistant turn; OpenAI Model Spec (CC0-1.0) the ``<assistant>`` examples;
HumaneBench (Apache-2.0) the rated outputs. The label of a response (``cheerleader`` and the absolute
``violations`` present) is a hand label committed as ``data/labels/guard_<source>.jsonl`` (the sha1 of the text
and the labels, never the text); the importer yields only labelled responses, so a training source feeds the
tone head exactly the rows a person judged.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

csv.field_size_limit(10**9)
CONTEXT_CHARS = 400
Response = dict[str, Any]


def key(text: str) -> str:
    """The sha1 of a text: how the committed hand labels refer to it without storing it."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _ctx(s: str | None) -> str:
    s = (s or "").strip()
    return s if len(s) <= CONTEXT_CHARS else s[:CONTEXT_CHARS] + " [...]"


def dedup(rows: list[Response]) -> list[Response]:
    """``rows`` with their text stripped, the empty ones and all but the first of each text dropped (the tone
    importers share it)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        t = (r["text"] or "").strip()
        if not t or t in seen:
            continue
        seen.add(t)
        r["text"] = t
        out.append(r)
    return out


def _read(p: Path) -> str:
    return Path(p).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- syco-bench
# output/<run>/<test>_results.csv (the manifest does not pin the combined_output folder).
SYCO_COLUMNS = {
    # test: [(response column, context column, score column)]
    "pickside": [("response1", "statement1", "score1"), ("response2", "statement2", "score2")],
    "mirror": [("response1", "userstance1", "score1"), ("response2", "userstance2", "score2")],
    "whosaid": [("response_self", "statement", "score_self"), ("response_friend", "statement", "score_friend")],
    "delusion": [("response", "statement", "median_score")],
}


def syco_bench(files: dict[str, Path]) -> list[Response]:
    """Every model answer in output/<run>/<test>_results.csv (pickside, mirror, whosaid, delusion), with the user's
    statement as context."""
    rows = []
    for path in sorted(files):
        m = re.fullmatch(r"output/([^/]+)/(pickside|mirror|whosaid|delusion)_results\.csv", path)
        if not m:
            continue
        run, test = m.groups()
        for i, d in enumerate(csv.DictReader(io.StringIO(_read(files[path])))):
            for rcol, ccol, scol in SYCO_COLUMNS[test]:
                ctx = d.get(ccol, "")
                if test == "whosaid":
                    ctx = ("[user wrote it] " if rcol == "response_self" else "[a friend wrote it] ") + ctx
                rows.append({"text": d.get(rcol) or "", "context": _ctx(ctx),
                             "meta": {"file": path, "run": run, "test": test, "row": i, "column": rcol,
                                      "judge_score": d.get(scol)}})
    return dedup(rows)


# --------------------------------------------------------------------------- hh-rlhf
def hh_rlhf(files: dict[str, Path]) -> list[Response]:
    """Final Assistant turn of every transcript (chosen and rejected) of harmless-base/test."""
    rows = []
    raw = gzip.decompress(Path(files["harmless-base/test.jsonl.gz"]).read_bytes()).decode("utf-8")
    for i, line in enumerate(raw.splitlines()):
        if not line.strip():
            continue
        d = json.loads(line)
        for side in ("chosen", "rejected"):
            t = d[side]
            a = t.rfind("\n\nAssistant:")
            if a < 0:
                continue
            h = t.rfind("\n\nHuman:", 0, a)
            human = t[h + len("\n\nHuman:"):a] if h >= 0 else ""
            rows.append({"text": t[a + len("\n\nAssistant:"):], "context": _ctx(human),
                         "meta": {"file": "harmless-base/test.jsonl.gz", "line": i, "side": side}})
    return dedup(rows)


# --------------------------------------------------------------------------- darkbench
def darkbench(files: dict[str, Path]) -> list[Response]:
    """messages[1].content of data/darkbench-sft-v1.jsonl (the superset of the exclude-harmful file).

    Category: propagated from the last anchor row whose user message is a darkbench.csv Example
    (rows are written in groups of ~10 per seed, the first identical to the seed)."""
    seeds: dict[str, str] = {}
    for r in csv.DictReader(io.StringIO(_read(files["data/darkbench.csv"]))):
        seeds.setdefault(r["Example"], r["Deceptive Pattern"])
    excl = set()
    for line in _read(files["data/darkbench-sft-exclude-harmful.jsonl"]).splitlines():
        if line.strip():
            excl.add(json.loads(line)["messages"][1]["content"].strip())
    rows, cat, anchor = [], None, None
    for i, line in enumerate(_read(files["data/darkbench-sft-v1.jsonl"]).splitlines()):
        if not line.strip():
            continue
        msgs = json.loads(line)["messages"]
        user, asst = msgs[0]["content"], msgs[1]["content"]
        if user in seeds:
            cat, anchor = seeds[user].lower(), i
        rows.append({"text": asst, "context": _ctx(user),
                     "meta": {"file": "data/darkbench-sft-v1.jsonl", "line": i, "category": cat,
                              "anchor_line": anchor, "in_exclude_harmful": asst.strip() in excl}})
    return dedup(rows)


# --------------------------------------------------------------------------- FastChat
def _jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a FastChat JSONL file (question and answer files alike), blank lines skipped."""
    return [json.loads(line) for line in _read(path).splitlines() if line.strip()]


def _mtbench(files: dict[str, Path]) -> list[Response]:
    qs = {q["question_id"]: q for q in _jsonl(files["fastchat/llm_judge/data/mt_bench/question.jsonl"])}
    rows = []
    for path in sorted(files):
        if "/model_answer/" not in path or not path.endswith(".jsonl") or path.endswith("/alpaca-13b.jsonl"):
            continue
        for d in _jsonl(files[path]):
            q = qs.get(d["question_id"], {})
            for c in d["choices"]:
                for k, turn in enumerate(c["turns"]):
                    prompt = q.get("turns", [""] * (k + 1))[k] if k < len(q.get("turns", [])) else ""
                    rows.append({"text": turn if isinstance(turn, str) else "", "context": _ctx(prompt),
                                 "meta": {"file": path, "model": d.get("model_id"), "question_id": d["question_id"],
                                          "category": q.get("category"), "choice": c.get("index", 0), "turn": k}})
    return dedup(rows)


def fastchat_2023_mtbench(files: dict[str, Path]) -> list[Response]:
    """Every turn of every model answer of the 2023 MT-bench (alpaca-13b not pinned), with its question as context."""
    return _mtbench(files)


def fastchat_2024_mtbench(files: dict[str, Path]) -> list[Response]:
    """Every turn of every model answer of the 2024 MT-bench snapshot, with its question as context."""
    return _mtbench(files)


def fastchat_2023_vicunabench(files: dict[str, Path]) -> list[Response]:
    """Every model answer of the Vicuna bench (alpaca-13b not pinned), with its question as context."""
    qs = {q["question_id"]: q for q in _jsonl(files["fastchat/eval/table/question.jsonl"])}
    rows = []
    for path in sorted(files):
        if "/answer/" not in path or not path.endswith(".jsonl") or "alpaca-13b" in path:
            continue
        for d in _jsonl(files[path]):
            q = qs.get(d["question_id"], {})
            rows.append({"text": d.get("text") or "", "context": _ctx(q.get("text")),
                         "meta": {"file": path, "model": d.get("model_id"), "question_id": d["question_id"],
                                  "category": q.get("category"), "turn": 0}})
    return dedup(rows)


# --------------------------------------------------------------------------- spiral-bench
def spiral_bench(files: dict[str, Path]) -> list[Response]:
    """Every assistant turn of res_v0.2/*.json, with the judge's per-turn annotations.

    judgements[chunkN].assistant_turn_indexes index the assistant-only turn list (checked:
    assistant_length_chars == len(turn) for all 2,265 judged turns).  meta.judge holds the
    judge's full_metrics for that turn ({metric: [[quoted span, intensity 1-3], ...]}); None when
    the turn was not judged (first assistant turn, or judge error)."""
    rows = []
    for path in sorted(files):
        if not re.fullmatch(r"res_v0\.2/[^/]+\.json", path):
            continue
        d = json.loads(_read(files[path]))
        for run in sorted(d):
            for pid in sorted(d[run].get("eval_prompts_v0.2.json", {})):
                for conv in d[run]["eval_prompts_v0.2.json"][pid]:
                    tr = conv["transcript"]
                    judged = {}
                    for j in conv.get("judgements", {}).values():
                        for ai in j.get("assistant_turn_indexes", []):
                            judged[ai] = j.get("full_metrics")
                    ai = -1
                    for ti, t in enumerate(tr):
                        if t["role"] != "assistant":
                            continue
                        ai += 1
                        prev = tr[ti - 1]["content"] if ti > 0 and tr[ti - 1]["role"] == "user" else ""
                        rows.append({"text": t["content"], "context": _ctx(prev),
                                     "meta": {"file": path, "run": run, "prompt_id": pid,
                                              "category": conv.get("category"),
                                              "model": conv.get("evaluated_model"),
                                              "convo_index": conv.get("convo_index"),
                                              "assistant_turn": ai, "transcript_index": ti,
                                              "judge": judged.get(ai)}})
    return dedup(rows)


# --------------------------------------------------------------------------- model-spec
_BLOCK = re.compile(r"^~~~xml\n(.*?)^~~~", re.S | re.M)
_TAG = re.compile(r"<(user|assistant|developer|system|tool)\b([^>]*)>(.*?)</\1>", re.S)
_MARK = re.compile(r"^\s*<!--\s*(GOOD|BAD|OK)\b:?\s*(.*?)\s*-->", re.S)


def model_spec(files: dict[str, Path]) -> list[Response]:
    """Every <assistant> message in the ~~~xml example blocks of model_spec.md, then of the pinned
    evaluation-prompt files examples/*.md (sorted; 16 earlier-turn assistant messages, no marker),
    except messages addressed to a tool (recipient="python"/"browser"/"functions.*": 3 tool calls).

    meta.marker is GOOD / BAD / OK / None (the <!-- GOOD|BAD|OK: reason --> comment that opens the block,
    removed from the text), meta.reason its free text, meta.attrs the tag attributes
    (e.g. end_turn), meta.example the nearest preceding **Example** title."""
    rows = []
    paths = ["model_spec.md"] + sorted(p for p in files if re.fullmatch(r"examples/[^/]+\.md", p))
    for path in paths:
        rows += _model_spec_file(path, _read(files[path]))
    return dedup(rows)


def _model_spec_file(path: str, md: str) -> list[Response]:
    rows = []
    for bi, b in enumerate(_BLOCK.finditer(md)):
        before = md[:b.start()]
        ex = re.findall(r"\*\*Example\*\*:?\s*(.*)", before[-3000:])
        title = ex[-1].strip() if ex else ""
        last_user = ""
        for mi, m in enumerate(_TAG.finditer(b.group(1))):
            role, attrs, body = m.group(1), m.group(2).strip(), m.group(3)
            if role == "user":
                last_user = body
                continue
            if role != "assistant" or "recipient=" in attrs:  # tool calls are not replies to a person
                continue
            mk = _MARK.match(body)
            marker, reason = (mk.group(1), mk.group(2)) if mk else (None, "")
            text = body[mk.end():] if mk else body
            rows.append({"text": text, "context": _ctx(last_user),
                         "meta": {"file": path, "block": bi, "message": mi,
                                  "line": md.count("\n", 0, b.start() + 7 + m.start()) + 1,
                                  "marker": marker, "reason": reason, "attrs": attrs, "example": title}})
    return rows


# --------------------------------------------------------------------------- humanebench
def humanebench(files: dict[str, Path]) -> list[Response]:
    """ai_output of data/human_ratings/rater-*_ratings.csv, one row per distinct output, with the
    four raters' ratings in meta (rater-3 names the column "rating (rubric)")."""
    by_text: dict[str, Response] = {}
    order: list[str] = []
    for path in sorted(p for p in files if re.fullmatch(r"data/human_ratings/rater-\d+_ratings\.csv", p)):
        rater = path.rsplit("rater-", 1)[1].split("_", 1)[0]
        for i, d in enumerate(csv.DictReader(io.StringIO(_read(files[path])))):
            t = (d.get("ai_output") or "").strip()
            if not t:
                continue
            if t not in by_text:
                by_text[t] = {"text": t, "context": _ctx(d.get("input_text")),
                              "meta": {"file": path, "row": i, "input_id": d.get("input_id"),
                                       "model": d.get("ai_model"), "persona": d.get("ai_persona"), "ratings": {}}}
                order.append(t)
            rating = d.get("rating") or d.get("rating (rubric)") or ""
            by_text[t]["meta"]["ratings"][f"rater-{rater}"] = rating
    return [by_text[t] for t in order]


EXTRACTORS: dict[str, Callable[[dict[str, Path]], list[Response]]] = {
    "syco-bench": syco_bench, "hh-rlhf": hh_rlhf, "darkbench": darkbench,
    "fastchat-2023-mtbench": fastchat_2023_mtbench, "fastchat-2023-vicunabench": fastchat_2023_vicunabench,
    "fastchat-2024-mtbench": fastchat_2024_mtbench, "spiral-bench": spiral_bench, "model-spec": model_spec,
    "humanebench": humanebench,
}


def labelled(source: str, responses: list[Response]) -> Iterator[dict[str, Any]]:
    """The responses that carry a committed hand label, as guard rows ``{"text", "cheerleader", "violations",
    "cheer_spans"}``; ``cheer_spans`` are the (start, end) character offsets of the sentences judged cheerleading."""
    from penny_slm.training.datasets import data_dir

    labels = {}
    for line in (data_dir() / "labels" / f"guard_{source}.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            labels[obj["key"]] = obj
    for r in responses:
        label = labels.get(key(r["text"]))
        if label is not None:
            yield {"text": r["text"], "cheerleader": bool(label["cheerleader"]), "violations": list(label["violations"]),
                   "cheer_spans": [tuple(span) for span in label.get("cheer_spans", [])], "source": source}


def importer(source: str) -> Callable[[dict[str, Path]], Iterator[dict[str, Any]]]:
    """The files → labelled guard rows importer of ``source``."""
    def run(files: dict[str, Path]) -> Iterator[dict[str, Any]]:
        return labelled(source, EXTRACTORS[source](files))
    run.__doc__ = EXTRACTORS[source].__doc__
    return run


BY_SOURCE = {name: importer(name) for name in EXTRACTORS if name != "model-spec"}
"""The manifest's importer name → the function; ``model-spec`` feeds research too (``importers.populate``)."""
