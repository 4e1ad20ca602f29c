"""Specificity the Alphabetic Index gives directly, walked from note wordings: a printed "Note:" line does not
cut a term's subterms off, a stage is the number said after "stage", a main term listed with another form of
its word ("Infarct, infarction") is found by either, "non-ST" stays one word when an abbreviation spells it
out, and urinary symptoms are in the lexicon. The index is a small one in the CMS CSV layout, written here;
its lines follow the FY2025 index."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.icd10cm_index import read_index_csv
from medcode.data.index_walk import IndexTree
from medcode.data.types import Assertion, Document, Encounter, Mention, Patient
from medcode.model.builtin import BuiltinCoder
from medcode.model.candidates.index_walk import IndexWalker, side_words, words
from medcode.model.catalog import Knowledge
from tests.model.index_csv import tree_from_csv

INDEX_CSV = """RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,D,0,"Diabetes, diabetic",,,(mellitus),E11.9
2,D,1,type 2,,,,E11.9
3,D,2,with,,,,
4,D,3,chronic kidney disease,,,,E11.22
5,D,0,"Disease, diseased",,,,R69
6,D,1,kidney,,,,N28.9
7,D,2,chronic,,,,N18.9
8,D,3,stage 2,,,(mild),N18.2
9,D,3,stage 3a,,,,N18.31
10,D,3,stage 3b,,,,N18.32
11,F,0,"Failure, failed",,,,
12,F,1,heart,,,(acute) (sudden),I50.9
13,F,2,congestive,,,,I50.9
14,F,2,diastolic,,,(congestive),I50.30
15,F,3,chronic,,,(congestive),I50.32
16,F,1,"Note: heart failure stages A, B, C, and D are ACC/AHA stages",,,,
17,F,2,stage A,,,,Z91.89
18,F,2,systolic,,,(congestive) (left ventricular),I50.20
19,F,3,acute,,,(congestive),I50.21
20,F,3,chronic,,,(congestive),I50.22
21,F,1,renal,,,,N19
22,I,0,"Infarct, infarction",,,,
23,I,1,"myocardium, myocardial",,,(acute),I21.9
24,I,2,non-ST elevation,,,(NSTEMI),I21.4
25,I,2,ST elevation,,,(STEMI),I21.3
26,I,3,anterior,,,(anterolateral) (wall),I21.09
27,I,3,inferior,,,(wall),I21.19
28,F,0,"Fracture, traumatic",,,,T14.8
29,F,1,rib,,,,S22.3-
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> IndexTree:
    return tree_from_csv(tmp_path_factory.mktemp("index"), INDEX_CSV)


@pytest.fixture(scope="module")
def walker(tree: IndexTree) -> IndexWalker:
    return IndexWalker(tree)


def _walk(walker: IndexWalker, mention: str, sentence: str) -> list[str]:
    found = Mention(
        document_id="d1", start=0, end=len(mention), text=mention, type="condition", assertion=Assertion()
    )
    return [w.code for w in walker.walk_mentions([found], [sentence])]


def test_note_line_keeps_the_terms_subterms_below_it(tmp_path: Path) -> None:
    file = tmp_path / "ICD10CM_2026_Index.csv"
    file.write_text(INDEX_CSV)
    paths = {term.path for term in read_index_csv(file)}
    assert ("Failure, failed", "heart", "systolic", "chronic") in paths
    assert not any(part.startswith("Note:") for path in paths for part in path)


def test_systolic_heart_failure_reaches_its_acuity_past_a_note(walker: IndexWalker) -> None:
    assert _walk(walker, "HFrEF, systolic CHF", "Systolic CHF, chronic, stable on meds.") == ["I50.22"]
    assert _walk(walker, "acute systolic heart failure", "Admitted for acute systolic heart failure.") == [
        "I50.21"
    ]
    # the subterms before the note still answer
    assert _walk(walker, "diastolic heart failure", "Chronic diastolic heart failure.") == ["I50.32"]


def test_stage_is_the_value_said_after_stage(walker: IndexWalker) -> None:
    sentence = "Type 2 DM complicated by chronic kidney disease stage 3b; on insulin."
    assert "N18.32" in _walk(walker, "chronic kidney disease", sentence)
    assert "N18.2" not in _walk(walker, "chronic kidney disease", sentence)
    # a roman numeral after "stage" is the same stage; a number said elsewhere is none
    assert _walk(walker, "CKD stage IIIa", "CKD stage IIIa") == ["N18.31"]
    assert _walk(walker, "CKD", "CKD, creatinine 2, 3a lab drawn") == ["N18.9"]


def test_stage_words_pair_a_stage_with_its_value() -> None:
    assert {"stage", "3a", "stage:3a"} <= words("CKD stage 3a")
    assert "stage:2" not in words("T2DM with CKD stage 3a")
    assert "stage:a" in words("stage A")


def test_main_term_is_found_by_the_other_form_of_its_word(walker: IndexWalker) -> None:
    sentence = "Inferior wall ST elevation myocardial infarction, troponin rising."
    assert _walk(walker, "ST elevation myocardial infarction", sentence) == ["I21.19"]
    assert _walk(walker, "myocardial infarction", "Acute myocardial infarction.") == ["I21.9"]


def test_qualifier_after_the_comma_still_qualifies(tree: IndexTree) -> None:
    # "traumatic" is not another form of "Fracture": the note need not say it, and it does not name the term
    assert tree.main_terms(words("traumatic"), words) == []
    assert tree.main_terms(words("rib fracture"), words) == [
        i for i, m in enumerate(tree.mains) if m.title == "Fracture, traumatic"
    ]


def test_nstemi_takes_the_non_st_elevation_subterm(walker: IndexWalker) -> None:
    assert _walk(walker, "NSTEMI", "NSTEMI, medical management.") == ["I21.4"]
    assert _walk(walker, "non-ST elevation MI", "non-ST elevation MI") == ["I21.4"]
    assert _walk(walker, "STEMI", "Anterior STEMI, to cath lab.") == ["I21.09"]


def test_side_words_come_from_the_shared_side_reader() -> None:
    assert side_words("Lt knee effusion") == {"left", "unilateral"}
    assert side_words("given 1 L of saline") == frozenset()


def test_urinary_frequency_is_coded_as_a_symptom() -> None:
    coder = BuiltinCoder(Knowledge())
    encounter = Encounter(
        encounter_id="e1",
        patient=Patient(age=52, sex="male"),
        setting="outpatient",
        documents=[
            Document(document_id="d1", text="Urinary frequency and nocturia for 3 weeks. Possible BPH.")
        ],
    )
    codes = [c.code for c in coder.suggest(encounter).codes]
    assert "R35.0" in codes and "R35.1" in codes
