from __future__ import annotations

import pytest

from medcode.model.text.normalize import Normalization


@pytest.fixture(scope="module")
def norm() -> Normalization:
    return Normalization.load()


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Fractures", "fracture"),
        ("arteries", "artery"),
        ("abscesses", "abscess"),
        ("rashes", "rash"),
        ("headaches", "headache"),
        ("diabetes", "diabetes"),
        ("metastases", "metastasis"),
        ("vertebrae", "vertebra"),
        ("sinuses", "sinus"),
        ("stenosis", "stenosis"),
        ("haemorrhage", "hemorrhage"),
        ("oesophagus", "esophagus"),
        ("Tumours", "tumor"),
        ("diarrhoea", "diarrhea"),
        ("II", "2"),
        ("Sjögren", "sjogren"),
        ("B.", "b"),
    ],
)
def test_word_normal_forms(norm: Normalization, word: str, expected: str) -> None:
    assert norm.word(word) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("HTN", "hypertension"),
        ("htn", "hypertension"),
        ("T2DM", "type 2 diabetes mellitus"),
        ("DM2", "type 2 diabetes mellitus"),
        ("COPD", "chronic obstructive pulmonary disease"),
        ("CHF", "congestive heart failure"),
        ("afib", "atrial fibrillation"),
        ("UTI", "urinary tract infection"),
        ("CKD3b", "chronic kidney disease stage 3b"),
        ("MI", "myocardial infarction"),
    ],
)
def test_abbreviations_expand(norm: Normalization, token: str, expected: str) -> None:
    assert norm.token(token) == expected


def test_case_sensitive_abbreviations_leave_common_words_alone(norm: Normalization) -> None:
    assert norm.token("mi") == "mi"
    assert norm.token("Af") != "atrial fibrillation"
    assert norm.token("AF") == "atrial fibrillation"
    assert norm.token("PE") == "pulmonary embolism"
    assert norm.token("pe") == "pe"


def test_typographic_characters_fold(norm: Normalization) -> None:
    assert norm.fold("Crohn\u2019s") == "crohn's"
    assert norm.fold("non\u2013small") == "non-small"
    assert norm.is_transparent("'s")
    assert norm.is_transparent("-")
    assert not norm.is_transparent(",")


def test_normalizer_never_changes_the_text(small_pipeline) -> None:  # type: ignore[no-untyped-def]
    text = "HTN, Haemorrhages and CKD3b."
    doc = small_pipeline.process(text)
    assert doc.text == text
    assert [t.norm_ for t in doc][:1] == ["hypertension"]
