"""Note words against code-title words."""

from __future__ import annotations

from medcode.model.rules.terms import content_words, title_support, title_terms


def test_abbreviations_and_equivalents_are_normalised() -> None:
    assert {"chronic", "kidney", "disease", "stage", "3b"} <= content_words("CKD stage 3b")
    assert content_words("diabetic") == content_words("diabetes")
    assert content_words("kidneys") == content_words("renal")
    assert "3" in content_words("stage III")
    assert {"right", "unilateral"} <= content_words("rt knee")


def test_without_part_of_a_title_must_not_be_documented() -> None:
    terms = title_terms(
        "Type 2 diabetes mellitus with unspecified diabetic retinopathy without macular edema"
    )
    assert "retinopathy" in terms.required
    assert {"macular", "edema"} <= terms.excluded
    words = content_words("diabetic retinopathy with macular edema")
    assert title_support(
        "Type 2 diabetes mellitus with unspecified diabetic retinopathy without macular edema", words
    ).violated


def test_nonessential_modifiers_need_no_documentation() -> None:
    support = title_support(
        "Chronic diastolic (congestive) heart failure", content_words("chronic diastolic heart failure")
    )
    assert support.missing == 0
    assert support.matched == 4


def test_given_words_are_not_counted() -> None:
    given = title_terms("Chronic kidney disease, stage 3 (moderate)").required
    support = title_support("Chronic kidney disease, stage 3b", content_words("ckd 3b"), given)
    assert (support.matched, support.missing) == (1, 0)
