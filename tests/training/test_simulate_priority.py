"""Active-learning queue priorities (training.active) and their effect on the service's claim order."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.errors import InvalidInputError
from medcode.data.types import CodeSuggestion, Encounter, Evidence, Result
from medcode.review_desk import ReviewDesk, SimulatedCoder
from medcode.training.active import (
    expected_corrections,
    fifo_priority,
    margin_priority,
    priority_of,
    uncertainty_priority,
)

from .fakes import encounter

EVIDENCE = [Evidence(document_id="d1", start=0, end=4)]


def _result(encounter_id: str, confidences: list[float]) -> Result:
    items = [
        CodeSuggestion(code=code, confidence=p, evidence=EVIDENCE)
        for code, p in zip(["I10", "E11.9", "R50.9", "J45.909"], confidences, strict=False)
    ]
    return Result(
        encounter_id=encounter_id,
        model_version="m",
        code_set_version="ICD-10-CM 2026",
        codes=[c for c in items if c.confidence >= 0.5],
        candidates=[c for c in items if c.confidence < 0.5],
    )


def test_expected_corrections_count_codes_near_one_half_most() -> None:
    assert expected_corrections(_result("a", [0.99, 0.01])) == pytest.approx(0.02)
    assert expected_corrections(_result("b", [0.5, 0.5])) == pytest.approx(1.0)


def test_uncertain_encounters_come_first_and_fifo_keeps_arrival_order() -> None:
    confident = _result("confident", [0.98, 0.97, 0.02])
    uncertain = _result("uncertain", [0.55, 0.45, 0.6])
    assert uncertainty_priority(uncertain) < uncertainty_priority(confident)
    assert margin_priority(uncertain) < margin_priority(confident)
    assert fifo_priority(uncertain) == fifo_priority(confident)
    assert priority_of("uncertainty") is uncertainty_priority
    with pytest.raises(InvalidInputError):
        priority_of("random")


class _TableCoder:
    version = "table-1"
    code_set_version = "ICD-10-CM 2026"

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def suggest(self, enc: Encounter) -> Result:
        return _result(enc.encounter_id, self.table[enc.encounter_id])


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("fifo", ["sure", "unsure", "middling"]), ("uncertainty", ["unsure", "middling", "sure"])],
)
def test_the_review_queue_serves_items_in_the_strategys_order(
    tmp_path: Path, strategy: str, expected: list[str]
) -> None:
    coder = _TableCoder({"sure": [0.99, 0.98], "unsure": [0.5, 0.52, 0.48], "middling": [0.8, 0.3]})
    desk = ReviewDesk(f"sqlite:///{tmp_path / 'review.db'}", SimulatedCoder({}))
    try:
        for name in ("sure", "unsure", "middling"):
            desk.submit(encounter(name, f"{name} note"), coder, priority_of(strategy))
        desk.review(3)
        order = [e.encounter_id for e in desk.export()]
    finally:
        desk.close()
    assert order == expected
