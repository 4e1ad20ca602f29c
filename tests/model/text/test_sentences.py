from __future__ import annotations

import pytest

from medcode.model.text import TextPipeline


def sentences(pipeline: TextPipeline, text: str) -> list[str]:
    return [s.text.strip() for s in pipeline.process(text).sents if s.text.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BP 120/80, HR 72. Lungs clear.", ["BP 120/80, HR 72.", "Lungs clear."]),
        ("Seen by Dr. Smith today. Stable.", ["Seen by Dr. Smith today.", "Stable."]),
        ("Avoid NSAIDs, e.g. ibuprofen, for now.", ["Avoid NSAIDs, e.g. ibuprofen, for now."]),
        (
            "Metformin 500 mg q.d. with meals. Return in 2 weeks.",
            ["Metformin 500 mg q.d. with meals.", "Return in 2 weeks."],
        ),
        ("A 1.5 cm nodule. No calcification.", ["A 1.5 cm nodule.", "No calcification."]),
        ("Fever and cough\nNo rash", ["Fever and cough", "No rash"]),
        ("1. Pneumonia\n2. CHF", ["1. Pneumonia", "2. CHF"]),
        ("Pain radiating to the\nleft arm since noon.", ["Pain radiating to the\nleft arm since noon."]),
        ("Negative for hepatitis B. Positive for HIV.", ["Negative for hepatitis B.", "Positive for HIV."]),
        ("Temp 38.5 C. Sats 95% on RA.", ["Temp 38.5 C.", "Sats 95% on RA."]),
        ("Is it pneumonia? Possibly.", ["Is it pneumonia?", "Possibly."]),
    ],
)
def test_clinical_punctuation(small_pipeline: TextPipeline, text: str, expected: list[str]) -> None:
    assert sentences(small_pipeline, text) == expected


def test_one_sentence_per_line_as_in_codiesp(small_pipeline: TextPipeline) -> None:
    text = (
        "A 29-year-old woman with renal colic.\nNo history of nephrolithiasis.\nThe examination was normal.\n"
    )
    assert len(sentences(small_pipeline, text)) == 3


def test_a_header_and_its_body_are_separate_sentences(small_pipeline: TextPipeline) -> None:
    assert sentences(small_pipeline, "ROS: Negative for fever.") == ["ROS:", "Negative for fever."]


def test_plain_sentence_spans_split_lines_and_sentence_punctuation() -> None:
    from medcode.model.text.sentences import sentence_spans

    text = "  Fever since Monday. No cough; Denies pain.\nType 2 diabetes on metformin 1.5 mg.\n\n"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Fever since Monday.",
        "No cough;",
        "Denies pain.",
        "Type 2 diabetes on metformin 1.5 mg.",
    ]


def test_plain_sentence_spans_cut_long_sentences_at_a_space() -> None:
    from medcode.model.text.sentences import sentence_spans

    text = "word " * 30
    spans = sentence_spans(text, max_chars=40)
    assert all(b - a <= 40 for a, b in spans)
    assert " ".join(text[a:b] for a, b in spans).split() == text.split()
