"""Slang by lexicon under the project's convention, and the surface-feature formality/depth estimates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from penny_slm.pipeline.controls import SLANG_PREFIX as CONTROLS_PREFIX
from penny_slm.rules import slang
from penny_slm.rules.register import formality, technical_depth
from penny_slm.rules.slang import NOT_SLANG, detect_slang, make_lexicon, parse_cspell

CSPELL_SAMPLE = """# Modern English slang words
bet # An expression of agreement. "Want to grab food? Bet!"
cap # A lie or falsehood. "He said he won, but that's cap."
L # Short for "loss" or failure. "That was a big L."
aura # A distinctive atmosphere. "She has a positive aura."
gonna # going to
rizz # Charisma. "He has rizz."
"""


def terms(text: str, lexicon: slang.Lexicon | None = None) -> list[str]:
    return [s.term for s in detect_slang(text, lexicon or make_lexicon())]


def test_spans_index_the_text_and_carry_glosses() -> None:
    text = "ngl that pizza was bussin, no cap"
    spans = detect_slang(text, make_lexicon())
    assert [s.term for s in spans] == ["ngl", "bussin", "no cap"]
    assert all(text[s.start:s.end].lower() == s.term for s in spans)
    assert spans[2].gloss == "no lie, honestly" and 0 < spans[0].confidence <= 1


@pytest.mark.parametrize("text", [
    "yeah I'm gonna pick up the kids, okay?", "wanna grab lunch lol", "damn, that was a long day",
    "my kid wants a cool bike", "Put a cap on the bottle.", "I bet you will like it.", "The fire was warm.",
    "I ate that sandwich.", "Slay the dragon first, then the castle.", "In the mid 90s prices rose.",
    "Bet there are a few left.", "I'd bet", "DHL is your best bet.", "it's giving me shudders", "I can't even imagine it.", "my fam\u00adily",
])
def test_convention_no_slang_in_ordinary_or_excluded_words(text: str) -> None:
    lex = make_lexicon(parse_cspell(CSPELL_SAMPLE) | {"fire": "great", "ate": "did great", "mid": "meh",
                                                      "i can't even": "overwhelmed", "ily": "I love you"})
    assert terms(text, lex) == []


def test_ambiguous_terms_need_their_context() -> None:
    lex = make_lexicon(parse_cspell(CSPELL_SAMPLE) | {"fire": "great"})
    assert terms("that's cap", lex) == ["cap"]
    assert terms("Bet!", lex) == ["bet"]
    assert terms("big L for the team", lex) == ["l"]
    assert terms("this track is fire", lex) == ["fire"]
    assert {s.confidence for s in detect_slang("this track is fire", lex)} == {slang.CONTEXT_CONFIDENCE}


def test_ambiguous_terms_count_in_slang_company_unless_their_ordinary_sense_is_plain() -> None:
    lex = make_lexicon(parse_cspell(CSPELL_SAMPLE) | {"drip": "style", "lit": "exciting", "dead": "hilarious"})
    assert terms("check out his drip", lex) == [] and terms("She has a positive aura.", lex) == []
    assert terms("ngl his drip is unreal", lex) == ["ngl", "drip"]
    assert {s.confidence for s in detect_slang("ngl his drip is unreal", lex)} == {slang.CLEAR_CONFIDENCE, slang.COMPANY_CONFIDENCE}
    assert terms("ngl I lit the candle and made a bet on it", lex) == ["ngl"]  # ordinary senses stay ordinary
    assert terms("tbh that show is dead", lex) == ["tbh"]  # pattern only: never by company
    goat = make_lexicon({"goat": "greatest of all time"})
    assert terms("I had goat cheese", goat) == terms("the goat cheese was good", goat) == []  # "GOAT" is case-sensitive
    assert terms("Messi is the GOAT", goat) == terms("honestly she's the goat", goat) == ["goat"]


def test_two_word_terms_are_found_in_every_spelling_and_reported_as_the_lexicon_term() -> None:
    lex = make_lexicon({"brain rot": "numbness from feeds", "glow-up": "a transformation", "zombie-ing": "x"})
    text = "pure brainrot, then a glowup and more brain-rot"
    spans = detect_slang(text, lex)
    assert [(s.term, text[s.start:s.end]) for s in spans] == [
        ("brain rot", "brainrot"), ("glow-up", "glowup"), ("brain rot", "brain-rot")]
    assert spans[0].gloss == "numbness from feeds"
    assert slang.spellings("zombie-ing") == () and slang.spellings("e-girl") == ("egirl",)
    assert terms("a rent-free flat", make_lexicon()) == [] and terms("living rentfree in my head", make_lexicon()) == ["rent free"]


def test_cspell_parse_keeps_gloss_drops_example_and_convention_filters() -> None:
    parsed = parse_cspell(CSPELL_SAMPLE)
    assert parsed["l"] == 'Short for "loss" or failure.' and parsed["rizz"] == "Charisma."
    lex = make_lexicon(parsed, ("cspell",))
    assert "gonna" not in lex.terms and "rizz" in lex.terms and "aura" in slang.AMBIGUOUS
    assert not NOT_SLANG & set(lex.terms)


@pytest.mark.parametrize("dictionary", slang.DICTIONARIES, ids=lambda d: d.source)
def test_dictionary_pins_match_the_manifest_and_only_a_verified_copy_is_used(
        dictionary: slang.Dictionary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = json.loads((Path(slang.__file__).parents[1] / "training/data/sources.json").read_text())
    entry = next(s for s in manifest["sources"] if s["name"] == dictionary.source)
    assert entry["commit"] == dictionary.commit and entry["files"][dictionary.path]["sha256"] == dictionary.sha256
    assert entry["uses"] == {"slang": "train"}
    assert CONTROLS_PREFIX == slang.SLANG_PREFIX
    monkeypatch.setenv("PENNY_SLM_CACHE", str(tmp_path))
    target = tmp_path / "sources" / dictionary.source / dictionary.commit / dictionary.path
    target.parent.mkdir(parents=True)
    target.write_text(CSPELL_SAMPLE)  # not the pinned bytes: refused
    assert hashlib.sha256(target.read_bytes()).hexdigest() != dictionary.sha256 and slang.cached_file(dictionary) is None
    assert dictionary.source not in [source for source, _ in slang.cached_dictionaries()]


def test_genz_list_parses_and_its_hand_classification_applies() -> None:
    parsed = slang.parse_genz_csv('keyword,description\nRizz,One\'s charm\nDrip,"Style, ""fit"""\nKaren,x\nBussin’,good\n')
    assert parsed == {"rizz": "One's charm", "drip": 'Style, "fit"', "karen": "x", "bussin'": "good"}
    lex = make_lexicon(parsed, ("genz-slang",))
    assert "karen" not in lex.terms and terms("nice drip", lex) == [] and terms("his rizz and drip", lex) == ["rizz", "drip"]


def test_formality_orders_casual_below_formal() -> None:
    casual = ["ngl that pizza was bussin lol", "omg u coming tonight??", "yeah gonna crash early tbh"]
    formal = ["Could you please explain the difference between the two proposals?",
              "Dear Penny, I would appreciate a thorough explanation of the amortization schedule.",
              "I should be grateful for a summary of the committee's recommendations."]
    assert max(map(formality, casual)) < 0.45 < 0.6 <= min(map(formality, formal))


def test_technical_depth_orders_everyday_below_expert() -> None:
    everyday = ["what should I cook for dinner tonight?", "my cat keeps waking me up at night", "any fun plans for the weekend"]
    expert = ["Why does my mutex deadlock when two threads acquire the locks in opposite order?",
              "Is the posterior variance of a Bayesian linear regression affected by the prior covariance?",
              "Does PostgreSQL use the index when the query filters on a function of the column?"]
    assert max(map(technical_depth, everyday)) < 0.2 < 0.4 <= min(map(technical_depth, expert))
