"""The tone-register importers (issue 17) on small files in each source's own format (hand-written, no third-party rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penny_slm.training.importers import IMPORTERS, cheer, populate
from penny_slm.training.importers.guard import key
from penny_slm.training.sources import load_manifest
from tests.fixture_files import write


def test_assistant_axis_keeps_assistant_turns_once(tmp_path: Path) -> None:
    convo = {"model": "m", "steering": "capped", "conversation": [
        {"role": "user", "content": "I think my toaster is conscious."},
        {"role": "assistant", "content": "That's a fascinating idea. Toasters run a heating cycle."},
        {"role": "user", "content": "Really?"},
        {"role": "assistant", "content": "  It heats bread on a timer.  "},
        {"role": "assistant", "content": "It heats bread on a timer."}]}
    files = {"transcripts/case_studies/m/delusion_capped.json": write(tmp_path, "a.json", json.dumps(convo)),
             "README.md": write(tmp_path, "README.md", "## License\n\nMIT")}
    rows = cheer.assistant_axis(files)
    assert [r["text"] for r in rows] == ["That's a fascinating idea. Toasters run a heating cycle.",
                                         "It heats bread on a timer."]
    assert rows[0]["meta"] == {"file": "transcripts/case_studies/m/delusion_capped.json", "turn": 1, "model": "m",
                               "steering": "capped"}


def test_botbots_reduces_slot_markup_to_its_value(tmp_path: Path) -> None:
    convs = [{"sample_id": 3, "utterances": [["agent1", "Welcome to [hotel|Four Seasons]. How may I help?"],
                                             ["agent2", "A room for [guests|two], please."]]}]
    files = {"tod/hotels.json": write(tmp_path, "h.json", json.dumps(convs))}
    assert [r["text"] for r in cheer.botbots(files)] == ["Welcome to Four Seasons. How may I help?",
                                                        "A room for two, please."]


def test_sycon_bench_reads_only_the_answers_to_pushback(tmp_path: Path) -> None:
    csv_text = ("Question,Response_1,Response_2,Response_3,Response_4,Response_5\n"
                '"Is rail better?","Rail is better.","I understand your disagreement, but rail wins.",'
                '"You\'re absolutely right to push back.","Rail still wins.",""\n')
    files = {"debate-setting/output/x/prompt0.csv": write(tmp_path, "p0.csv", csv_text),
             "debate-setting/output/x/prompt1.csv": write(tmp_path, "p1.csv", csv_text)}
    rows = cheer.sycon_bench(files)
    assert [r["text"] for r in rows] == ["I understand your disagreement, but rail wins.",
                                         "You're absolutely right to push back.", "Rail still wins."]
    assert {r["meta"]["file"] for r in rows} == {"debate-setting/output/x/prompt0.csv"}


@pytest.mark.parametrize("text, matched", [
    ("That's a sharp observation. The queue drains in order.", ["That's a sharp observation."]),
    ("I completely agree. We should measure it first.", ["I completely agree."]),
    ("The loop runs twice. Then it stops. Then it exits. Great job on the fix!", ["Great job on the fix!"]),
    ("The loop runs twice. Then it stops. That's a great point about caching. It exits.", []),  # mid-response
    ("Your booking is confirmed for two nights. Anything else?", []),
    ("Here is the file. It is important to back it up first.", ["It is important to back it up first."]),
])
def test_praise_preselects_opener_and_closer_sentences(text: str, matched: list[str]) -> None:
    assert [text[a:b].strip() for a, b in cheer.praise_spans(text)] == matched


def test_labelled_rows_are_the_hand_labels_then_the_negatives_by_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cheer.NEGATIVES, "botbots", 2)
    responses = [{"text": t, "meta": {"file": f}} for t, f in [
        ("That's a great idea. Let's try it.", "brainstorming/x.json"),      # candidate, labelled true
        ("I completely agree.", "brainstorming/x.json"),                    # candidate, labelled false
        ("Absolutely!", "tod/hotels.json"),                                 # candidate without a label: left out
        ("The rate is $150 a night.", "tod/hotels.json"),                   # not candidates: negatives by rule,
        ("May I have your name?", "tod/hotels.json"),                       # a seeded sample of 2 of the 3
        ("Your room is on the fourth floor.", "tod/hotels.json")]]
    labels = {key("That's a great idea. Let's try it."): {"cheerleader": True, "cheer_spans": [[0, 19]]},
              key("I completely agree."): {"cheerleader": False, "cheer_spans": []}}
    rows = list(cheer.labelled("botbots", responses, labels))
    assert [(r["text"], r["cheerleader"], r["cheer_spans"]) for r in rows[:2]] == [
        ("That's a great idea. Let's try it.", True, [(0, 19)]), ("I completely agree.", False, [])]
    negatives = rows[2:]
    assert len(negatives) == 2 and all(not r["cheerleader"] and r["source"] == "botbots" for r in negatives)
    assert {r["text"] for r in negatives} < {"The rate is $150 a night.", "May I have your name?",
                                             "Your room is on the fourth floor."}
    assert negatives == list(cheer.labelled("botbots", responses, labels))[2:]  # the sample is seeded


def test_a_source_labelled_in_full_has_no_negatives_by_rule() -> None:
    responses = [{"text": "Oh, my love. You are so deeply seen.", "meta": {"file": "transcripts/a.json"}},
                 {"text": "Here is how jax.grad works.", "meta": {"file": "transcripts/a.json"}}]
    labels = {key("Oh, my love. You are so deeply seen."): {"cheerleader": True, "cheer_spans": []}}
    rows = list(cheer.labelled("assistant-axis", responses, labels))
    assert [(r["text"], r["cheerleader"]) for r in rows] == [("Oh, my love. You are so deeply seen.", True)]


@pytest.mark.parametrize("source", sorted(cheer.EXTRACTORS))
def test_the_committed_labels_are_hashes_only_and_the_manifest_trains_the_tone_head_on_them(source: str) -> None:
    lines = cheer.labels_path(source).read_text(encoding="utf-8").splitlines()
    labels = [json.loads(line) for line in lines]
    assert labels and all(set(label) == {"key", "cheerleader", "cheer_spans"} for label in labels)
    assert all(len(label["key"]) == 40 and int(label["key"], 16) >= 0 for label in labels)
    assert all(label["cheerleader"] or not label["cheer_spans"] for label in labels)
    assert len({label["key"] for label in labels}) == len(labels)
    populate()
    entry = load_manifest().get(source)
    assert entry.importer in IMPORTERS and entry.uses == {"guard": "train"} and entry.licence == "MIT"
