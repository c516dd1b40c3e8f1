"""Importers for the research classifier: public datasets → ``{"text", "needs_research", "category", "source"}``.

One function per source; each docstring names the licence and the label rule. The rules follow
docs/DATA.md and the contract that ``category`` decides ``needs_research`` (the five research categories
are true, every other category false): a settled sports fact is ``general``/false, a local availability
look-up ``current_events``/true, a live exchange rate ``prices_markets``/true.

Training sources are capped per (category, needs_research) block so that no one source dominates; the
cap is a seeded sample, so a rebuild on another machine reads the same rows. Test sources carry hand
labels committed as ``data/labels/research_<source>.jsonl`` ({key: sha1 of the text, labels}), never the
text itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import random
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from penny_slm.compat import require
from penny_slm.errors import InputError
from penny_slm.results import CATEGORIES, RESEARCH_CATEGORIES

Row = dict[str, Any]
BLOCK_CAP = 450
"""At most this many rows per (source, category) block, seeded: real data without letting the 12,000 SGD local
searches or 40,000 SQL titles decide what the classifier thinks a message looks like, and a training set that
fits the first-run budget (issue 23)."""
CAP_SEED = 25


def row(text: str, category: str, source: str) -> Row:
    """One labelled row; ``needs_research`` follows from ``category`` (the contract), so no importer can contradict it."""
    if category not in CATEGORIES:
        raise InputError(f"{source}: unknown category {category!r}")
    return {"text": " ".join(text.split()), "needs_research": category in RESEARCH_CATEGORIES, "category": category, "source": source}


def capped(rows: Iterable[Row], cap: int = BLOCK_CAP) -> list[Row]:
    """Unique texts, at most ``cap`` per (category) block, sampled with a fixed seed in a stable order."""
    blocks: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        if len(r["text"]) >= 3:
            blocks[r["category"]].setdefault(r["text"].casefold(), r)
    out: list[Row] = []
    for category in sorted(blocks):
        unique = sorted(blocks[category].values(), key=lambda r: r["text"])
        out += unique if len(unique) <= cap else random.Random(f"{CAP_SEED}-{category}").sample(unique, cap)
    return out


def _read(files: dict[str, Path], path: str) -> str:
    return files[path].read_text(encoding="utf-8")


# -- training sources ------------------------------------------------------------------------------------
_SPORT = re.compile(r"\b(sports?|game|games|match|baseball|football|soccer|basketball|hockey|vs|versus)\b", re.I)
_DOMAIN_WORDS = {
    "weather": re.compile(r"\b(weather|rain|raining|temperature|forecast|sunny|humid|humidity|wind|windy|snow|hot|cold)\b", re.I),
    "events": re.compile(r"\b(events?|concerts?|games?|match|shows?|things to do|activit(y|ies)|tickets?)\b", re.I),
    "movies": re.compile(r"\b(movies?|films?|theat(er|re)s?|cinemas?|showtimes?|playing)\b", re.I),
}
_LOOKUP_SERVICES = ("Restaurants", "Hotels", "Homes", "Services", "Travel", "Flights", "Buses", "Trains", "RentalCars")
_DEVICE_SERVICES = ("Alarm", "Calendar", "Banks", "Payment")


def _sgd_label(service: str, intent: str, text: str, first: bool) -> str | None:
    family = service.split("_")[0]
    if family == "Weather":
        return "weather" if first or _DOMAIN_WORDS["weather"].search(text) else None
    if family == "Events" and intent in ("FindEvents", "GetEventDates"):
        if not (first or _DOMAIN_WORDS["events"].search(text)):
            return None
        return "sports" if _SPORT.search(text) else "current_events"
    if service == "Movies_1" and intent in ("FindMovies", "GetTimesForMovie"):
        return "current_events" if first or _DOMAIN_WORDS["movies"].search(text) else None
    if family in _DEVICE_SERVICES:
        return "personal"  # the user's own alarms, calendar, accounts and payments (the category definitions, docs/DATA.md)
    if family in _LOOKUP_SERVICES and intent.startswith(("Find", "Search", "Get")) and first:
        return "current_events"  # what is available or open now: a live look-up
    return None


_NAMED_ENTITY_SLOTS = {("Music", "song_name"), ("Music", "album"), ("Music", "artist"), ("Music", "track"),
                       ("Movies", "movie_name"), ("Media", "title"), ("Weather", "city")}
BARE_ENTITY_CAP = 250
"""Bare song, album, artist, film and city names from SGD's slot values: enough to learn that a bare name asks
nothing live, not so many that a short query reads as a name."""


def sgd_bare_entities(dialogues: Iterable[dict[str, Any]]) -> list[Row]:
    """Slot values that name a song, album, artist, film or city, on their own → general: a named entity typed
    into a box with no live cue (docs/DATA.md, category definitions). Venues (restaurants, hotels, stadiums) are
    left out: a bare venue name usually asks for its opening hours or tickets."""
    out = []
    for dialogue in dialogues:
        for turn in dialogue["turns"]:
            for frame in turn["frames"]:
                family = frame["service"].split("_")[0]
                for action in frame["actions"]:
                    if (family, action["slot"]) in _NAMED_ENTITY_SLOTS:
                        out += [row(v, "general", "sgd") for v in action.get("values", []) if not v[:1].isdigit()]
    return capped(out, BARE_ENTITY_CAP)


def sgd(files: dict[str, Path]) -> Iterator[Row]:
    """Schema-Guided Dialogue (CC BY-SA 4.0). USER turns that state a request (an ``INFORM_INTENT`` act),
    labelled by their frame: Weather → weather; events (sports by keyword) and cinema showtimes → current_events
    or sports; finding restaurants, hotels, flights, homes, services → current_events (a live availability
    look-up); alarms, calendars, bank accounts, payments → personal (the user's own device or account, as the
    held-out sources' hand labels define ``personal``; docs/DATA.md, category definitions). Later turns must carry a domain word, so
    context-only turns ("Yes, that one.") are dropped; booking, buying and media requests are dropped. Beside the
    turns, bare song, film and city names from the slot values → general (``sgd_bare_entities``)."""
    out = []
    dialogues = [d for path in sorted(p for p in files if p.split("/")[-1].startswith("dialogues_"))
                 for d in json.loads(_read(files, path))]
    for dialogue in dialogues:
        user_turns = [t for t in dialogue["turns"] if t["speaker"] == "USER"]
        for n, turn in enumerate(user_turns):
            for frame in turn["frames"]:
                if not any(a["act"] == "INFORM_INTENT" for a in frame["actions"]):
                    continue
                label = _sgd_label(frame["service"], frame["state"]["active_intent"], turn["utterance"], n == 0)
                if label:
                    out.append(row(turn["utterance"], label, "sgd"))
    return iter(capped(out) + sgd_bare_entities(dialogues))


def gsm8k_train(files: dict[str, Path]) -> Iterator[Row]:
    """GSM8K, train split only (MIT). Every question → math: word problems about prices and discounts are
    math, not markets. The test split is reserved for evaluation and is not in the manifest."""
    rows = [row(json.loads(line)["question"], "math", "gsm8k_train")
            for line in _read(files, "grade_school_math/data/train.jsonl").splitlines() if line.strip()]
    return iter(capped(rows))


class _PlainUnpickler(pickle.Unpickler):
    """Plain data only (dicts, lists, strings, numbers): a pickle that names any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise InputError(f"refusing to unpickle {module}.{name}: only plain data is read")


def staqc_sql(files: dict[str, Path]) -> Iterator[Row]:
    """StaQC SQL question titles (CC BY 4.0). Every title → coding ("select the latest version of a row" is
    SQL, not a software release). Read with an unpickler that accepts plain data only."""
    path = next(p for p in files if p.endswith("qid_to_title.pickle"))
    titles = _PlainUnpickler(io.BytesIO(files[path].read_bytes()), encoding="latin1").load()
    return iter(capped(row(str(t), "coding", "staqc_sql") for t in titles.values()))


_RATE_METHOD = re.compile(r"\b(how|why|based on|determin\w*|calculat\w*|polic(y|ies)|where do you get|set|source)\b", re.I)
def banking77(files: dict[str, Path]) -> Iterator[Row]:
    """BANKING77 (CC BY 4.0). ``exchange_rate`` questions → prices_markets (they ask for a rate), unless they ask
    how rates are set or sourced → concept_explanation; every other intent (the user's own card, transfer,
    top-up, fee) → personal: support for their own account, as the category definitions in docs/DATA.md have it
    (the hand labels of the held-out sources put own-account actions under personal; until issue 25 this rule
    said general, which contradicted them)."""
    out = []
    for split in ("banking_data/train.csv", "banking_data/test.csv"):
        for rec in csv.DictReader(io.StringIO(_read(files, split))):
            text, intent = rec["text"], rec["category"]
            if intent == "exchange_rate":
                out.append(row(text, "concept_explanation" if _RATE_METHOD.search(text) else "prices_markets", "banking77"))
            else:
                out.append(row(text, "personal", "banking77"))
    return iter(capped(out))


_PRACTICAL = {"considerations", "when to contact a medical professional", "emergency or overdose", "forget a dose", "precautions",
              "storage and disposal", "dietary", "dose", "support groups", "how can i learn more", "important warning",
              "interactions with foods", "interactions with medications", "interactions with herbs and supplements",
              "severe reaction", "contraindication"}
MEDQUAD_RESEARCH_CAP = 120
""""What research is being done for X" is one template 403 times: enough of it to learn the sense, not the phrasing."""


MEDQUAD_FOCUS_CAP = 150
"""Bare disease, drug and gene names (each document's ``Focus``): a bare medical term is a concept to explain."""


def medquad(files: dict[str, Path]) -> Iterator[Row]:
    """MedQuAD (CC BY 4.0). ``qtype`` "research" ("what research is being done for X") → current_events (it
    asks what is under way now); practical question types (dose, precautions, when to call a doctor) → general;
    every other type (information, symptoms, causes, treatment ...) → concept_explanation. Each document's bare
    ``Focus`` (a disease, drug or gene name, as typed into a search box) → concept_explanation."""
    out, focus = [], []
    for path in sorted(p for p in files if p.endswith(".xml")):
        document = ET.fromstring(files[path].read_bytes())
        names = ((f.text or "").strip() for f in document.iter("Focus"))
        focus += [row(name, "concept_explanation", "medquad") for name in names if name]
        for question in document.iter("Question"):
            text, qtype = (question.text or "").strip().removesuffix(" ?").strip(), question.get("qtype", "")
            if text:
                category = "current_events" if qtype == "research" else "general" if qtype in _PRACTICAL else "concept_explanation"
                out.append(row(text + "?", category, "medquad"))
    research = capped((r for r in out if r["category"] == "current_events"), MEDQUAD_RESEARCH_CAP)
    return iter(capped(r for r in out if r["category"] != "current_events") + research + capped(focus, MEDQUAD_FOCUS_CAP))


_CHATTERBOT_FILES = {"ai": "personal", "botprofile": "personal", "emotion": "personal", "psychology": "personal",
                     "greetings": "personal", "conversations": "personal", "gossip": "personal", "food": "personal",
                     "health": "personal", "humor": "creative", "coding": "coding", "computers": "concept_explanation",
                     "science": "concept_explanation", "politics": "concept_explanation", "literature": "concept_explanation",
                     "history": "general", "trivia": "general", "movies": "general", "money": "general", "tech_support": "general",
                     "sports": "general"}


_TIME_VARIANT = re.compile(r"\b(news|who is the (president|prime minister|governor|mayor|ceo|king|queen|pope|chancellor))\b", re.I)
_TO_THE_BOT = re.compile(r"\b(you|your|yours|hal)\b", re.I)
_SETTLED_WHO = re.compile(r"^\s*(who (wrote|was|invented|discovered|painted|directed|composed)|what is [A-Z])")
_DEFINITION = re.compile(r"^\s*(what (is|are)|explain|define)\b", re.I)
_GREETING = re.compile(r"^\s*(hi|hello|hey|greetings|good (morning|afternoon|evening|night)|what'?s up|howdy|bye)\b", re.I)


def _bare_topic(text: str) -> bool:
    """One or two words that are not a question or a greeting ("Robotics", "gossips"): a topic typed into a box."""
    return len(text.split()) <= 2 and "?" not in text and not _GREETING.search(text)


def _chatterbot_label(text: str, topic: str) -> str:
    """What one line asks, before the file's topic: the news or a current office holder → current_events; a line
    to the bot → personal; a bare topic of one or two words in a chit-chat file → general (a search-box topic,
    not chit-chat: "Robotics", "gossips"); a settled who-did-it or a title → general; a definition → concept_explanation."""
    if _TIME_VARIANT.search(text):
        return "current_events"
    if _TO_THE_BOT.search(text):
        return "personal"
    if _bare_topic(text) and _CHATTERBOT_FILES[topic] == "personal":
        return "general"
    if _SETTLED_WHO.search(text):
        return "general"
    if _DEFINITION.search(text) and _CHATTERBOT_FILES[topic] in ("general", "concept_explanation"):
        return "concept_explanation"
    return _CHATTERBOT_FILES[topic]


def chatterbot(files: dict[str, Path]) -> Iterator[Row]:
    """ChatterBot English corpus (BSD-3-Clause). The first line of each conversation, labelled by what the
    line asks (``_chatterbot_label``: a bare one- or two-word topic is general), else by its file: chit-chat and questions to the bot about itself →
    personal; jokes → creative; coding → coding; computers, science, politics, literature →
    concept_explanation; history, trivia, movies, money, sports → general (settled)."""
    yaml = require("yaml")
    out = []
    for path in sorted(files):
        topic = path.rsplit("/", 1)[-1].removesuffix(".yml")
        if topic not in _CHATTERBOT_FILES:
            continue
        for conversation in yaml.safe_load(_read(files, path)).get("conversations", []):
            if conversation and isinstance(conversation[0], str):
                out.append(row(conversation[0], _chatterbot_label(conversation[0], topic), "chatterbot"))
    return iter(capped(out))


def tsqa_human(files: dict[str, Path]) -> Iterator[Row]:
    """Time-Sensitive QA, human-paraphrased splits (BSD-3-Clause). Every question names a past interval
    ("from 2006 to 2007"), so its answer is settled → general (team and coach questions too: settled sports
    facts are general, not sports). Hard negatives for time words that do not need a search."""
    out = []
    for path in ("dataset/human_annotated_train.json", "dataset/human_annotated_test.json"):
        for entity in json.loads(_read(files, path)):
            out += [row(question[0], "general", "tsqa_human") for question in entity["questions"]]
    return iter(capped(out))


def ovos_core_intents(files: dict[str, Path]) -> Iterator[Row]:
    """OVOS core intents (CC BY-SA 4.0): lower-case voice-assistant utterances to the assistant itself (repeat,
    clarify, confirm, stop, feedback) → personal."""
    rows = (row(rec["utterance"], "personal", "ovos_core_intents")
            for rec in csv.DictReader(io.StringIO(_read(files, "text/core_intents_v0.1.csv"))))
    return iter(capped(rows))


# -- test sources: hand labels --------------------------------------------------------------------------
def text_key(text: str) -> str:
    """The key a hand label is stored under: sha1 of the text exactly as the importer builds it."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def hand_labelled(texts: Iterable[str], source: str, labels_dir: Path) -> Iterator[Row]:
    """The texts that have a committed hand label, with it (labels are keyed by :func:`text_key`)."""
    labels = {}
    for line in (labels_dir / f"research_{source}.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            labels[obj["key"]] = obj["category"]
    seen: set[str] = set()
    for text in texts:
        key = text_key(text)
        if key in labels and key not in seen:
            seen.add(key)
            yield row(text, labels[key], source)


def _labels_dir() -> Path:
    from penny_slm.training.datasets import data_dir

    return data_dir() / "labels"


def webquestions(files: dict[str, Path]) -> Iterator[Row]:
    """Held out for testing: 600 hand-labelled questions of a seeded sample (``docs/DATA.md``)."""
    return hand_labelled(webquestions_texts(files), "webquestions", _labels_dir())


def self_instruct_user(files: dict[str, Path]) -> Iterator[Row]:
    """Held out for testing: all 252 instructions, hand-labelled."""
    return hand_labelled(self_instruct_texts(files), "self_instruct", _labels_dir())


def model_spec(files: dict[str, Path]) -> Iterator[Row]:
    """Held out for testing: all 473 unique user prompts, hand-labelled."""
    return hand_labelled(model_spec_texts(files), "model_spec", _labels_dir())


def mimics_manual(files: dict[str, Path]) -> Iterator[Row]:
    """Held out for testing: 400 hand-labelled queries of a seeded sample."""
    return hand_labelled(mimics_texts(files), "mimics", _labels_dir())


def webquestions_texts(files: dict[str, Path]) -> list[str]:
    """WebQuestions (CC BY 4.0) as brmson re-split it: lower-case search-suggest questions, all splits."""
    return sorted({q["qText"] for path in sorted(files) if path.endswith(".json") for q in json.loads(_read(files, path))})


def self_instruct_texts(files: dict[str, Path]) -> list[str]:
    """Self-Instruct user-oriented instructions (Apache-2.0): the instruction, plus its first input when there is one."""
    out = []
    for line in _read(files, "human_eval/user_oriented_instructions.jsonl").splitlines():
        if line.strip():
            obj = json.loads(line)
            given = (obj.get("instances") or [{}])[0].get("input", "")
            out.append(obj["instruction"] + ("\n" + given if given.strip() else ""))
    return out


_USER_BLOCK = re.compile(r"<user>\s*(.*?)\s*</user>", re.S)


def model_spec_texts(files: dict[str, Path]) -> list[str]:
    """OpenAI Model Spec example prompts (CC0-1.0): every ``<user>`` block of the examples and the spec."""
    return sorted({m.group(1).strip() for path in sorted(files) if path.endswith(".md")
                   for m in _USER_BLOCK.finditer(_read(files, path)) if m.group(1).strip()})


def mimics_texts(files: dict[str, Path]) -> list[str]:
    """MIMICS-Manual (MIT): Bing search queries."""
    path = next(p for p in files if p.endswith("MIMICS-Manual.tsv"))
    reader = csv.DictReader(io.StringIO(_read(files, path)), delimiter="\t", quoting=csv.QUOTE_NONE)
    return sorted({rec["query"] for rec in reader})


BY_SOURCE = {"sgd": sgd, "gsm8k-train": gsm8k_train, "staqc-sql": staqc_sql, "banking77": banking77, "medquad": medquad,
             "chatterbot": chatterbot, "tsqa-human": tsqa_human, "ovos-core-intents": ovos_core_intents,
             "webquestions": webquestions, "self-instruct-user": self_instruct_user, "mimics-manual": mimics_manual}
"""The manifest's importer name → the function (``importers.populate`` registers them; ``model-spec`` feeds
the guard too, so it is registered there)."""
