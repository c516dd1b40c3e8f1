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
    assert {r["formality"] for r in rows} == {0.2}  # Reddit comments: the informal anchor


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


def test_genplus_relabels_terms_on_word_boundaries_and_pairs_formality(tmp_path: Path) -> None:
    from penny_slm.training.importers.context import genplus

    vocab = [{"word": "Bet", "definition": "agreement"}, {"word": "Lit", "definition": "exciting"},
             {"word": "Gonna", "definition": "going to"}]
    pairs = [{"original": "That is a better plan.", "translated": "That plan is better, gonna do it.", "terms": ["bet"]},
             {"original": "The party was exciting.", "translated": "The party was LIT, bet.", "terms": ["lit", "bet"]}]
    files = {"vocabulary.json": write(tmp_path, "vocabulary.json", json.dumps(vocab)),
             "data/generated-10000.json": write(tmp_path, "gen.json", json.dumps(pairs))}
    assert list(genplus(files)) == [
        {"text": "That is a better plan.", "slang": [], "formality": 1.0, "pair": "genplus-0"},
        # only 'better' and 'gonna': no slang label, but still the less formal of its pair
        {"text": "That plan is better, gonna do it.", "formality": 0.0, "pair": "genplus-0"},
        {"text": "The party was exciting.", "slang": [], "formality": 1.0, "pair": "genplus-1"},
        {"text": "The party was LIT, bet.", "formality": 0.0, "pair": "genplus-1", "slang": ["LIT", "bet"]}]


def test_emobank_takes_the_genre_prior_and_drops_semeval(tmp_path: Path) -> None:
    from penny_slm.training.importers.register import emobank

    files = {"corpus/meta.tsv": write(tmp_path, "meta.tsv", "id\tdocument\tcategory\tsubcategory\n"
                                      "a_1\tdoc\tnewspaper\tnyt\nb_2\tdoc\tblog\t \nc_3\tdoc\tSemEval\t\n"),
             "corpus/emobank.csv": write(tmp_path, "emobank.csv", 'id,split,V,A,D,text\n'
                                         'a_1,train,3.0,3.0,3.0,The committee approved the budget.\n'
                                         'b_2,test,3.2,3.1,3.0,"lol, what a  day"\nc_3,train,3,3,3,Headline here\n'
                                         'd_4,train,3,3,3,No genre for this one\n')}
    assert list(emobank(files)) == [{"text": "The committee approved the budget.", "formality": 0.85},
                                    {"text": "lol, what a day", "formality": 0.4}]


def test_arc_and_pubmedqa_depth_priors(tmp_path: Path) -> None:
    from penny_slm.training.importers.register import arc, arc_depth, pubmedqa

    header = ("questionID,originalQuestionID,totalPossiblePoint,AnswerKey,isMultipleChoiceQuestion,includesDiagram,"
              "examName,schoolGrade,year,question,subject,category\n")
    files = {"ARC-Easy/ARC-Easy-Train.csv": write(tmp_path, "arc.csv", header +
                                                  'Q1,1,1,B,1,0,MCAS,3,2007,Which animal can fly? (A) a dog (B) a bird,,Train\n'
                                                  'Q2,2,1,A,1,0,MCAS,9,2007,"Why do  lichens grow? (A) x (B) y",,Train\n'
                                                  'Q3,3,1,A,1,0,MCAS,,2007,No grade given? (A) x,,Train\n'
                                                  'Q4,4,1,2,1,0,NYSEDREGENTS,8,2007,Plants need (1) light (2) salt,,Train\n'),
             "README.md": write(tmp_path, "README.md", "not a csv")}
    assert list(arc(files)) == [{"text": "Which animal can fly?", "technical_depth": 0.15},
                                {"text": "Why do lichens grow?", "technical_depth": 0.45},
                                {"text": "Plants need", "technical_depth": 0.4}]
    assert arc_depth(1) == 0.15 and arc_depth(12) == 0.45
    qa = {"1": {"QUESTION": "Do statins reduce  mortality in sepsis?", "CONTEXTS": ["not read"]}, "2": {"QUESTION": ""}}
    assert list(pubmedqa({"data/ori_pqal.json": write(tmp_path, "pqal.json", json.dumps(qa))})) == [
        {"text": "Do statins reduce mortality in sepsis?", "technical_depth": 0.9}]


def test_cefr_sp_maps_the_mean_level_onto_zero_to_one(tmp_path: Path) -> None:
    from penny_slm.training.importers.register import cefr_sp

    files = {"CEFR-SP/Wiki-Auto/CEFR-SP_Wikiauto_test.txt": write(tmp_path, "test.txt",
                                                                  "The cat sat .\t1\t1\nIt is n't clear .\t3\t4\n"
                                                                  "Bad line\tA1\n"),
             "CEFR-SP/README.md": write(tmp_path, "README.md", "x")}
    assert list(cefr_sp(files)) == [{"text": "The cat sat.", "technical_depth": 0.0},
                                    {"text": "It isn't clear.", "technical_depth": 0.5}]


def test_mmlu_levels_reads_levelled_subjects_questions_only(tmp_path: Path) -> None:
    from penny_slm.training.importers.register import MMLU_DEPTH, mmlu_levels

    files = {"data/test/college_physics_test.csv": write(tmp_path, "c.csv", '"Why is  the sky blue?",a,b,c,d,A\n,a,b,c,d,B\n'),
             "data/test/elementary_mathematics_test.csv": write(tmp_path, "e.csv", "What is 2 + 2?,3,4,5,6,B\n"),
             "data/test/anatomy_test.csv": write(tmp_path, "a.csv", "No level in the name?,a,b,c,d,A\n"),
             "LICENSE": write(tmp_path, "LICENSE", "MIT License")}
    assert list(mmlu_levels(files)) == [
        {"text": "Why is the sky blue?", "technical_depth": MMLU_DEPTH["college"], "subject": "college_physics"},
        {"text": "What is 2 + 2?", "technical_depth": MMLU_DEPTH["elementary"], "subject": "elementary_mathematics"}]
    assert MMLU_DEPTH["elementary"] < MMLU_DEPTH["high_school"] < MMLU_DEPTH["college"] < MMLU_DEPTH["professional"]


def test_the_manifest_registers_the_formality_and_depth_importers() -> None:
    populate()
    sources = {s.name: s for s in load_manifest().sources}
    for name, task, role in (("emobank", "formality", "train"), ("genplus", "formality", "test"),
                             ("arc", "depth", "train"), ("pubmedqa", "depth", "train"),
                             ("cefr-sp-wikiauto", "depth", "test"), ("mmlu-levels", "depth", "probe")):
        assert sources[name].importer in IMPORTERS and sources[name].role(task) == role
