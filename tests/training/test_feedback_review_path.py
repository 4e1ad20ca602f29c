"""Feedback produced through the service's own review path (submit, claim, decide, finalize, export) by the
simulated coder, merged into a training set."""

from __future__ import annotations

from pathlib import Path

from medcode.data.types import Gold
from medcode.review_desk import ReviewDesk, SimulatedCoder
from medcode.training.active import fifo_priority
from medcode.training.feedback import merge_feedback
from tests.fakes import FakeCoder

from .fakes import encounter

NOTE = (
    "Type 2 diabetes mellitus with hyperglycemia.\n"
    "Essential hypertension, treated.\n"
    "Chronic kidney disease stage 3b was found on labs."
)


def _desk(tmp_path: Path, human: SimulatedCoder) -> ReviewDesk:
    return ReviewDesk(f"sqlite:///{tmp_path / 'review.db'}", human)


def test_simulated_coder_accepts_replaces_rejects_and_adds_by_the_gold_codes(tmp_path: Path) -> None:
    gold = {"e1": Gold(diagnosis=["E11.65", "I10", "N18.32"])}
    # the model suggests E11.9 (wrong; E11.65 is the gold code of its category) and I10 (right), with
    # J45.909 ranked next as a candidate
    model = FakeCoder.ranking({"e1": Gold(diagnosis=["E11.9", "I10"])}, pool=["J45.909"])
    human = SimulatedCoder(gold)
    desk = _desk(tmp_path, human)
    try:
        assert (
            desk.submit(encounter("e1", NOTE, ["E11.65", "I10", "N18.32"]), model, fifo_priority)
            == "in_review"
        )
        assert desk.review(5) == 1
        (example,) = desk.export()
    finally:
        desk.close()
    assert example.encounter.gold is not None
    assert sorted(example.encounter.gold.diagnosis) == ["E11.65", "I10", "N18.32"]
    assert {(c.code, c.source) for c in example.final_codes} == {
        ("I10", "accepted"),
        ("E11.65", "replacement"),
        ("N18.32", "added"),
    }
    assert {(n.code, n.kind) for n in example.rejected} == {("E11.9", "replaced")}
    added = next(c for c in example.final_codes if c.code == "N18.32")
    assert added.evidence and "kidney" in added.evidence[0].text.lower()
    assert human.stats.accepted == 1 and human.stats.replaced == 1 and human.stats.added == 1
    training = merge_feedback([], [example], evaluation=[encounter("dev-1", "Fever.", ["R50.9"])])
    assert training.negatives["e1"][0].code == "E11.9"
    span = ("diagnosis", "N18.32", "d1", added.evidence[0].start, added.evidence[0].end)
    assert span in training.evidence["e1"]


def test_wrong_suggestion_without_a_sibling_is_rejected_and_unknown_codes_are_refused(tmp_path: Path) -> None:
    gold = {"e2": Gold(diagnosis=["I10", "ZZZ.99"])}  # ZZZ.99 is no ICD-10-CM code: the service refuses it
    model = FakeCoder.ranking({"e2": Gold(diagnosis=["R50.9", "I10"])}, pool=[])
    human = SimulatedCoder(gold)
    desk = _desk(tmp_path, human)
    try:
        desk.submit(encounter("e2", "Essential hypertension. No fever."), model, fifo_priority)
        desk.review(1)
        (example,) = desk.export()
    finally:
        desk.close()
    assert [c.code for c in example.final_codes] == ["I10"]
    assert [(n.code, n.kind, n.reason) for n in example.rejected] == [
        ("R50.9", "rejected", "not supported by the note")
    ]
    assert human.stats.refused == 1


def test_review_budget_leaves_the_rest_in_the_queue(tmp_path: Path) -> None:
    model = FakeCoder.ranking({})
    desk = _desk(tmp_path, SimulatedCoder({f"e{i}": Gold(diagnosis=["I10"]) for i in range(3)}))
    try:
        for i in range(3):
            desk.submit(encounter(f"e{i}", f"Note {i}: essential hypertension."), model, fifo_priority)
        assert desk.review(2) == 2
        assert desk.open_items() == 1
        assert [e.encounter_id for e in desk.export()] == ["e0", "e1"]
        assert [e.encounter_id for e in desk.export(exclude_encounter_ids={"e0"})] == ["e1"]
    finally:
        desk.close()
