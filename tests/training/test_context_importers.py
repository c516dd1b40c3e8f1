"""The mood importers on small files in each source's own format (hand-written lines, no third-party rows)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from penny_slm.training.datasets import data_dir
from penny_slm.training.importers import IMPORTERS, populate
from penny_slm.training.importers.context import EKMAN, detokenise, goemotions, goemotions_test_overlap, xed
from penny_slm.training.sources import load_manifest
from tests.fixture_files import write


def test_goemotions_keeps_single_ekman_labels_and_drops_test_texts(tmp_path: Path) -> None:
    files = {"data/ekman/labels.txt": write(tmp_path, "labels.txt", "\n".join(EKMAN) + "\n"),
             "data/ekman/train.tsv": write(tmp_path, "train.tsv",
                                           "what a lovely morning\t3\tid1\nthis is vile\t1\tid2\n"
                                           "scared and angry\t0,2\tid3\nseen in the test split\t4\tid4\n"),
             "data/ekman/dev.tsv": write(tmp_path, "dev.tsv", "nothing much happened\t4\tid5\n")}
    overlap = frozenset({hashlib.sha1(b"seen in the test split").hexdigest()})
    rows = list(goemotions(files, overlap))
    assert [(r["text"], r["mood"], r["split"]) for r in rows] == [
        ("what a lovely morning", "joy", "train"), ("this is vile", "disgust", "train"),
        ("nothing much happened", "neutral", "dev")]


def test_the_committed_overlap_is_hashes_only() -> None:
    overlap = goemotions_test_overlap()
    assert len(overlap) == 36 and all(len(h) == 40 and int(h, 16) >= 0 for h in overlap)
    assert json.loads((data_dir() / "labels" / "goemotions_test_overlap.json").read_text()) == sorted(overlap)


def test_xed_maps_single_plutchik_labels_to_ekman_and_reads_neutral(tmp_path: Path) -> None:
    files = {"AnnotatedData/en-annotated.tsv": write(tmp_path, "en.tsv",
                                                     "I do n't believe it !\t7\nGet out of here .\t1\n"
                                                     "We will win tomorrow .\t2\nSo happy and sure .\t5, 8\n!\t5\n"),
             "AnnotatedData/neu_en.txt": write(tmp_path, "neu.txt", "9\tThe train leaves at six .\n")}
    assert [(r["text"], r["mood"]) for r in xed(files)] == [
        ("I don't believe it!", "surprise"), ("Get out of here.", "anger"), ("The train leaves at six.", "neutral")]


def test_detokenise() -> None:
    assert detokenise("He 's here , is n't he ? ( yes )") == "He's here, isn't he? (yes)"


def test_the_manifest_names_the_registered_importers_with_goemotions_training_and_xed_held_out() -> None:
    populate()
    sources = {s.name: s for s in load_manifest().sources}
    assert sources["goemotions"].importer in IMPORTERS and sources["xed"].importer in IMPORTERS
    assert sources["goemotions"].role("mood") == "train" and sources["xed"].role("mood") == "test"


def test_genplus_relabels_terms_on_word_boundaries_and_drops_unlabelled_rewrites(tmp_path: Path) -> None:
    from penny_slm.training.importers.context import genplus

    vocab = [{"word": "Bet", "definition": "agreement"}, {"word": "Lit", "definition": "exciting"},
             {"word": "Gonna", "definition": "going to"}]
    pairs = [{"original": "That is a better plan.", "translated": "That plan is better, gonna do it.", "terms": ["bet"]},
             {"original": "The party was exciting.", "translated": "The party was LIT, bet.", "terms": ["lit", "bet"]}]
    files = {"vocabulary.json": write(tmp_path, "vocabulary.json", json.dumps(vocab)),
             "data/generated-10000.json": write(tmp_path, "gen.json", json.dumps(pairs))}
    assert list(genplus(files)) == [
        {"text": "That is a better plan.", "slang": []},  # the rewrite has only 'better' and 'gonna': dropped
        {"text": "The party was exciting.", "slang": []},
        {"text": "The party was LIT, bet.", "slang": ["LIT", "bet"]}]
