"""Term generation for the full lexicon: title cleaning, index phrases, CodiEsp phrase mining."""

from __future__ import annotations

import pytest

from medcode.model.text.lexicon import TermSpec
from medcode.model.text.sources import (
    clean_title,
    core_terms,
    document_ngrams,
    index_phrases,
    mention_type_of,
    mine_codiesp,
    select_mined,
    split_parts,
)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Pneumonia, unspecified organism", ["Pneumonia"]),
        ("Essential (primary) hypertension", ["Essential hypertension", "Essential primary hypertension"]),
        ("Type 2 diabetes mellitus without complications", ["Type 2 diabetes mellitus"]),
        ("Unspecified appendicitis", ["appendicitis"]),
        ("Cough, unspecified", ["Cough"]),
        (
            "Human immunodeficiency virus [HIV] disease",
            ["Human immunodeficiency virus disease", "HIV disease"],
        ),
        ("Abnormal electroencephalogram [EEG]", ["Abnormal electroencephalogram"]),
        ("Cholera NOS", ["Cholera"]),
        (
            "Fracture of shaft of left femur, initial encounter for closed fracture",
            ["Fracture of shaft of left femur"],
        ),
    ],
)
def test_clean_title(title: str, expected: list[str]) -> None:
    assert clean_title(title) == expected


def test_split_parts() -> None:
    assert split_parts("Type 2 diabetes mellitus with diabetic nephropathy") == [
        "diabetic nephropathy",
        "Type 2 diabetes mellitus",
    ]
    assert "Carcinoma" not in split_parts("Carcinoma in situ of breast")
    assert "femur fracture" in split_parts("fracture of femur")
    assert all(len(p.split()) >= 2 for p in split_parts("Foreign body in left eye"))


def test_index_phrases_read_like_notes() -> None:
    phrases = index_phrases(("Pneumonia", "aspiration"))
    assert "aspiration Pneumonia" in phrases and "Pneumonia of aspiration" in phrases
    assert "rectal Bleeding" in index_phrases(("Bleeding", "rectum, rectal"))
    assert index_phrases(("Diabetes, diabetic", "with", "chronic kidney disease")) == [
        "Diabetes with chronic kidney disease"
    ]
    assert "acute Periodontitis" in index_phrases(("Periodontitis",), "(acute) (chronic)")
    assert "abnormal electroencephalogram" in [
        p.lower() for p in index_phrases(("Abnormal, abnormality", "electroencephalogram [EEG]"))
    ]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("R50.9", "sign_symptom"),
        ("S72.001", "injury"),
        ("T14.8", "injury"),
        ("I10", "condition"),
        ("BW03", "procedure"),
        ("0DTJ4ZZ", "procedure"),
        ("E11.9", "condition"),
    ],
)
def test_mention_type_of(code: str, kind: str) -> None:
    assert mention_type_of(code) == kind


def test_core_terms_are_typed_and_coded() -> None:
    terms = {t.text: t for t in core_terms()}
    assert terms["hypertension"].codes == ("I10",)
    assert terms["appendectomy"].type == "procedure"
    assert all(t.type in ("condition", "sign_symptom", "procedure", "injury") for t in terms.values())


def test_document_ngrams_have_content_words_at_both_ends() -> None:
    words = ["the", "renal", "colic", "was", "\x00", "severe", "renal", "colic"]
    grams = document_ngrams(words, frozenset({"the", "was"}))
    assert "renal colic" in grams
    assert "colic was" not in grams and "the renal" not in grams
    assert not any("\x00" in g for g in grams)


def test_mining_keeps_phrases_that_predict_a_code() -> None:
    docs = [(["renal", "colic", "pain"], ["N23"]) for _ in range(4)]
    docs += [(["pain", "today"], ["R52"]) for _ in range(36)]
    mined = dict(mine_codiesp(docs, frozenset(), min_count=3))
    assert mined["renal colic"] == ("N23",)
    assert "pain" not in mined or mined["pain"][0] != "N23"


def test_selected_mined_phrases_share_a_stem_with_their_code() -> None:
    mined = [("renal colic", ("N23",)), ("previous visit", ("N23",)), ("colic", ("N23",))]
    specs = select_mined(
        mined, existing=set(), code_stems={"N23": {"renal", "colic"}}, blocked=set(), stopwords=frozenset()
    )
    assert specs == [TermSpec("renal colic", "condition", ("N23",), "codiesp")]
