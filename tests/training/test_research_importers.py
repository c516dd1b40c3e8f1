"""The research importers' label rules on small files in each source's own format (hand-written lines, no
third-party rows): the rules follow the category definitions in docs/DATA.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from penny_slm.results import RESEARCH_CATEGORIES
from penny_slm.training.importers.research import _chatterbot_label, banking77, medquad, sgd
from tests.fixture_files import write


def _turn(utterance: str, service: str, intent: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"speaker": "USER", "utterance": utterance,
            "frames": [{"service": service, "state": {"active_intent": intent}, "actions": actions}]}


def test_sgd_own_device_and_account_tasks_are_personal_and_bare_names_general(tmp_path: Path) -> None:
    inform = [{"act": "INFORM_INTENT", "slot": "intent", "values": []}]
    dialogues = [
        {"turns": [_turn("Set an alarm for 7 in the morning.", "Alarm_1", "AddAlarm", inform)]},
        {"turns": [_turn("Move 300 dollars to my savings.", "Banks_1", "TransferMoney", inform)]},
        {"turns": [_turn("Will it rain in Denver tomorrow?", "Weather_1", "GetWeather", inform)]},
        {"turns": [_turn("Find me a place to eat in Oakland.", "Restaurants_1", "FindRestaurants", inform)]},
        {"turns": [_turn("Play a song.", "Music_1", "PlaySong",
                         [{"act": "INFORM", "slot": "song_name", "values": ["Paper Lanterns"]},
                          {"act": "INFORM", "slot": "artist", "values": ["The Quiet Owls"]}])]},
        {"turns": [_turn("Call them.", "Restaurants_1", "ReserveRestaurant",
                         [{"act": "INFORM", "slot": "restaurant_name", "values": ["Lucca Deli"]}])]},
    ]
    files = {"train/dialogues_001.json": write(tmp_path, "d.json", json.dumps(dialogues))}
    labels = {r["text"]: r["category"] for r in sgd(files)}
    assert labels == {"Set an alarm for 7 in the morning.": "personal", "Move 300 dollars to my savings.": "personal",
                      "Will it rain in Denver tomorrow?": "weather", "Find me a place to eat in Oakland.": "current_events",
                      "Paper Lanterns": "general", "The Quiet Owls": "general"}  # a bare venue name is left out


def test_banking77_account_support_is_personal_and_todays_rate_is_prices(tmp_path: Path) -> None:
    csv = ("text,category\nMy card still hasn't arrived,card_arrival\nWhat is the euro rate today?,exchange_rate\n"
           "How do you calculate your exchange rates?,exchange_rate\n")
    files = {"banking_data/train.csv": write(tmp_path, "train.csv", csv),
             "banking_data/test.csv": write(tmp_path, "test.csv", "text,category\n")}
    labels = {r["text"]: (r["category"], r["needs_research"]) for r in banking77(files)}
    assert labels == {"My card still hasn't arrived": ("personal", False),
                      "What is the euro rate today?": ("prices_markets", True),
                      "How do you calculate your exchange rates?": ("concept_explanation", False)}


def test_medquad_bare_focus_is_a_concept(tmp_path: Path) -> None:
    xml = ('<Document id="1"><Focus>Glimmer Syndrome</Focus><QAPairs><QAPair pid="1">'
           '<Question qid="1-1" qtype="information">What is (are) Glimmer Syndrome ?</Question><Answer>a</Answer></QAPair>'
           '<QAPair pid="2"><Question qid="1-2" qtype="dose">How much Glimmerol should I take ?</Question><Answer>b</Answer>'
           '</QAPair></QAPairs></Document>')
    files = {"1_CancerGov_QA/0000001_1.xml": write(tmp_path, "a.xml", xml)}
    labels = {r["text"]: r["category"] for r in medquad(files)}
    assert labels == {"What is (are) Glimmer Syndrome?": "concept_explanation", "How much Glimmerol should I take?": "general",
                      "Glimmer Syndrome": "concept_explanation"}


def test_chatterbot_bare_topics_in_chit_chat_files_are_general_greetings_stay_personal() -> None:
    assert _chatterbot_label("Robotics", "ai") == "general"
    assert _chatterbot_label("Hello", "greetings") == "personal"
    assert _chatterbot_label("Are you alive?", "ai") == "personal"
    assert _chatterbot_label("Python", "coding") == "coding"  # only chit-chat files: a bare topic elsewhere keeps its file


def test_every_rule_keeps_category_and_needs_research_together(tmp_path: Path) -> None:
    files = {"banking_data/train.csv": write(tmp_path, "train.csv", "text,category\nIs the rate good now?,exchange_rate\n"
                                                                  "Cancel my transfer,cancel_transfer\n"),
             "banking_data/test.csv": write(tmp_path, "test.csv", "text,category\n")}
    assert all(r["needs_research"] == (r["category"] in RESEARCH_CATEGORIES) for r in banking77(files))
