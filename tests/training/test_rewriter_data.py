"""The rewriter's parallel data: reproducible, large enough, and a test split that shares no decoration with training."""

from __future__ import annotations

import re

import pytest

from penny_slm.training.datasets import data_dir
from penny_slm.training.rewriter_data import FAMILIES, TEST, TRAIN, load_pairs, rewriter_splits


@pytest.fixture(scope="module")
def splits() -> tuple[list, list]:
    return rewriter_splits()


def test_committed_splits_are_what_the_generator_writes(splits: tuple[list, list]) -> None:
    train, test = splits
    assert load_pairs(data_dir() / "rewriter_train.jsonl") == train
    assert load_pairs(data_dir() / "rewriter_test.jsonl") == test


def test_train_covers_every_family_and_clean_pairs_are_identities(splits: tuple[list, list]) -> None:
    train, _ = splits
    assert len(train) >= 2000
    assert {f for p in train for f in p.families} == set(FAMILIES)
    clean = [p for p in train if not p.families]
    assert len(clean) > 0.15 * len(train) and all(p.source == p.target for p in clean)
    assert all(p.source != p.target for p in train if p.families)


def test_no_test_decoration_appears_in_training(splits: tuple[list, list]) -> None:
    train, test = splits
    test_phrases = [*TEST.cheer_open, *TEST.cheer_close, *TEST.caps_lines, *TEST.storm_openers, *TEST.actions,
                    *TEST.coffee_asides]
    assert not set(test_phrases) & {*TRAIN.cheer_open, *TRAIN.cheer_close, *TRAIN.caps_lines, *TRAIN.actions}
    assert not [phrase for phrase in test_phrases if any(phrase in p.source for p in train)]
    assert not {p.target for p in test if p.families} & {p.target for p in train}


def test_a_name_opener_does_not_mangle_capitals(splits: tuple[list, list]) -> None:
    """"CJ, the loop..." is fine; "CJ, oMG", "CJ, bEST NEWS" and "CJ, i'd" were generator bugs the model trained on."""
    train, test = splits
    prose = [re.sub(r"`[^`]*`", "", p.source) for p in train + test if "name" in p.families]
    assert prose and not [s for s in prose if re.search(r"\b[a-z][A-Z]{2,}|\bi\b|\bi'", s)]


def test_training_has_both_forms_the_rewriter_meets(splits: tuple[list, list]) -> None:
    """Raw sources (``penny-slm rewrite``) and rule-fixed ones (the guard), each still needing a rewrite."""
    from penny_slm.config import load_persona
    from penny_slm.rules.prohibitions import detect

    train, _ = splits
    persona = load_persona()
    rule_families = {"caps", "storm", "action", "coffee", "name"}
    decorated = [p for p in train if set(p.families) & rule_families]
    raw = [p for p in decorated if detect(p.source, persona)]
    rule_fixed = [p for p in decorated if not detect(p.source, persona)]
    assert len(raw) > 0.3 * len(decorated) and len(rule_fixed) > 0.3 * len(decorated)
    assert all(p.source != p.target for p in rule_fixed)
