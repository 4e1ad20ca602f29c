from __future__ import annotations

import pytest

from medcode.model.text.sections import Sectionizer, SectionRules


@pytest.fixture(scope="module")
def sectionizer() -> Sectionizer:
    return Sectionizer(SectionRules.load())


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("PMH: HTN", "past_medical_history"),
        ("Past Medical History\n- HTN", "past_medical_history"),
        ("HISTORY OF PRESENT ILLNESS\nA 45 yo man.", "hpi"),
        ("HPI: cough", "hpi"),
        ("FHx - mother with DM", "family_history"),
        ("Family History: DM", "family_history"),
        ("Assessment and Plan: pneumonia", "assessment_and_plan"),
        ("A/P: pneumonia", "assessment_and_plan"),
        ("Dx: pneumonia", "diagnoses"),
        ("Discharge Diagnoses:\n1. CHF", "discharge_diagnoses"),
        ("ROS: negative", "review_of_systems"),
        ("Chief Complaint: chest pain", "chief_complaint"),
        ("Past Surgical History: appendectomy", "past_surgical_history"),
        ("Social History: no tobacco", "social_history"),
        ("Allergies: NKDA", "allergies"),
        ("Medications: metformin", "medications"),
        ("Physical Exam: clear lungs", "physical_exam"),
        ("Labs: Hb 12", "labs_imaging"),
        ("Procedures: colonoscopy", "procedures"),
        ("Plan: follow up", "plan"),
        ("  2. Impression: pneumonia", "assessment"),
    ],
)
def test_header_variants_are_recognised(sectionizer: Sectionizer, text: str, name: str) -> None:
    sections = sectionizer.find_sections(text)
    assert [s.name for s in sections] == [name]
    assert text[sections[0].header_start : sections[0].header_end].strip().rstrip(":-").strip()


@pytest.mark.parametrize(
    "text",
    [
        "Physical examination showed a soft abdomen.",
        "The plan is to operate tomorrow.",
        "Past medical history of diabetes.",
        "pmh: lower-case short headers are not trusted",
        "Planning: not a header",
    ],
)
def test_prose_is_not_a_header(sectionizer: Sectionizer, text: str) -> None:
    assert sectionizer.find_sections(text) == []


def test_headers_after_a_sentence_end_start_a_section(sectionizer: Sectionizer) -> None:
    text = "Stable overnight. Plan: continue antibiotics."
    sections = sectionizer.find_sections(text)
    assert [s.name for s in sections] == ["plan"]
    assert text[sections[0].header_start :].startswith("Plan:")


def test_a_section_runs_to_the_next_header(sectionizer: Sectionizer) -> None:
    text = "FAMILY HISTORY:\nMother with DM.\nFather with CAD.\nSOCIAL HISTORY:\nNo tobacco."
    family, social = sectionizer.find_sections(text)
    assert family.name == "family_history" and social.name == "social_history"
    assert text[family.body_start : family.end].strip() == "Mother with DM.\nFather with CAD."
    assert family.assertion == {"family": True}


def test_an_inline_section_ends_with_its_line(sectionizer: Sectionizer) -> None:
    text = "FHx: mother with breast cancer.\nCall if fever develops.\n  continued line"
    (family,) = sectionizer.find_sections(text)
    assert text[family.header_start : family.end] == "FHx: mother with breast cancer.\n"


def test_an_inline_section_keeps_its_continuation_lines(sectionizer: Sectionizer) -> None:
    text = "PMH: HTN\n  - DM2\n  - CKD\nHe presents with cough."
    (pmh,) = sectionizer.find_sections(text)
    assert text[pmh.body_start : pmh.end].strip() == "HTN\n  - DM2\n  - CKD"


def test_tokens_get_their_section_and_header_flag(small_pipeline) -> None:  # type: ignore[no-untyped-def]
    doc = small_pipeline.process("PMH: HTN.\nHe has cough.")
    assert doc._.token_sections[:3] == ["past_medical_history"] * 3
    assert doc._.header_tokens[:3] == [True, True, False]
    assert doc._.token_sections[-2] == "unknown"
