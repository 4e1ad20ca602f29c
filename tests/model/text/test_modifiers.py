from __future__ import annotations

import pytest

from medcode.model.text import TextPipeline


def attributes(pipeline: TextPipeline, text: str, target: str) -> dict[str, str]:
    for mention in pipeline.extract(text):
        if mention.text.lower() == target.lower():
            return mention.attributes
    raise AssertionError(f"{target!r} not found in {text!r}")


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        (
            "Left femur fracture on initial encounter.",
            "fracture",
            {"laterality": "left", "anatomy": "femur", "episode": "initial"},
        ),
        ("Acute on chronic kidney disease.", "chronic kidney disease", {"acuity": "acute on chronic"}),
        ("Chronic kidney disease.", "chronic kidney disease", {"acuity": "chronic", "anatomy": "kidney"}),
        (
            "Severe asthma exacerbation.",
            "asthma exacerbation",
            {"severity": "severe", "acuity": "acute exacerbation"},
        ),
        ("CKD 3b.", "CKD 3b", {"stage": "3b"}),
        ("Breast cancer stage IV.", "breast cancer", {"stage": "4", "anatomy": "breast"}),
        ("Bilateral pleural effusion.", "pleural effusion", {"laterality": "bilateral"}),
        ("Right-sided chest pain.", "chest pain", {"laterality": "right", "anatomy": "chest"}),
        ("Mild chronic gout.", "gout", {"severity": "mild", "acuity": "chronic"}),
        (
            "Fracture of femur, subsequent encounter for routine healing.",
            "fracture of femur",
            {"anatomy": "femur"},
        ),
    ],
)
def test_modifiers_are_attributes(
    small_pipeline: TextPipeline, text: str, target: str, expected: dict[str, str]
) -> None:
    found = attributes(small_pipeline, text, target)
    for key, value in expected.items():
        assert found.get(key) == value, (key, found)


def test_modifiers_do_not_leak_across_commas(small_pipeline: TextPipeline) -> None:
    found = attributes(small_pipeline, "Left knee pain, fever and chest pain.", "chest pain")
    assert "laterality" not in found


def test_no_modifiers_gives_empty_attributes(small_pipeline: TextPipeline) -> None:
    assert attributes(small_pipeline, "He has gout.", "gout") == {}
