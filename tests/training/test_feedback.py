"""Merging the base corpus with coder feedback (medcode.training.feedback)."""

from __future__ import annotations

import pytest

from medcode.training.feedback import EvaluationLeakError, assert_disjoint, merge_feedback

from .fakes import encounter, example

NOTE = "Type 2 diabetes with hyperglycemia. Essential hypertension. Asthma resolved."
DEV_NOTE = "Community acquired pneumonia. Iron deficiency anemia."


def _dev() -> list:
    return [encounter("dev-1", DEV_NOTE, ["J18.9", "D50.9"])]


def _gold(training: object, encounter_id: str) -> list[str]:
    (enc,) = [e for e in training.encounters if e.encounter_id == encounter_id]  # type: ignore[attr-defined]
    assert enc.gold is not None
    return sorted(enc.gold.diagnosis)


def test_latest_decision_on_an_encounter_wins() -> None:
    older = example("e1", NOTE, ["E11.9"], minutes=1, item_id=1)
    newer = example("e1", NOTE, ["E11.65", "I10"], ["E11.9"], minutes=5, item_id=2, revision=2)
    training = merge_feedback([], [newer, older], evaluation=_dev())
    assert _gold(training, "e1") == ["E11.65", "I10"]
    assert training.superseded == 1
    assert [p.revision for p in training.provenance] == [2]


def test_feedback_replaces_base_labels_and_rejected_codes_become_negatives() -> None:
    base = [encounter("e1", NOTE, ["E11.9", "I10", "J45.909"]), encounter("e2", "Fever.", ["R50.9"])]
    feedback = [example("e1", NOTE, ["E11.65", "I10"], ["E11.9", "J45.909"])]
    training = merge_feedback(base, feedback, evaluation=_dev())
    assert _gold(training, "e1") == ["E11.65", "I10"]
    assert _gold(training, "e2") == ["R50.9"]
    assert {(n.code, n.kind) for n in training.negatives["e1"]} == {
        ("E11.9", "rejected"),
        ("J45.909", "rejected"),
    }
    assert training.sources == {"e1": "feedback_over_base", "e2": "base"}
    assert training.summary()["negatives"] == 2


def test_feedback_about_evaluation_encounters_never_enters_training() -> None:
    feedback = [
        example("dev-1", DEV_NOTE, ["J18.9"]),  # the evaluation encounter itself
        example("copy-of-dev", DEV_NOTE, ["J18.9"]),  # the same note under another id
        example("e1", NOTE, ["I10"]),
    ]
    training = merge_feedback([], feedback, evaluation=_dev())
    assert [e.encounter_id for e in training.encounters] == ["e1"]
    assert sorted(training.dropped_evaluation) == ["copy-of-dev", "dev-1"]


def test_base_corpus_sharing_an_evaluation_encounter_is_refused() -> None:
    base = [encounter("dev-1", "Some other text.", ["I10"])]
    with pytest.raises(EvaluationLeakError, match="dev-1"):
        merge_feedback(base, [], evaluation=_dev())


def test_assert_disjoint_catches_an_evaluation_encounter_by_id_and_by_text() -> None:
    assert_disjoint([encounter("e1", NOTE)], _dev())
    with pytest.raises(EvaluationLeakError):
        assert_disjoint([encounter("dev-1", "changed text")], _dev())
    with pytest.raises(EvaluationLeakError):
        assert_disjoint([encounter("x", "  Community acquired pneumonia.\nIron deficiency anemia. ")], _dev())


def test_accepted_evidence_spans_become_trainer_evidence() -> None:
    spans = {"I10": (36, 58)}
    training = merge_feedback([], [example("e1", NOTE, ["I10", "E11.65"], evidence=spans)], evaluation=_dev())
    assert training.evidence == {"e1": [("diagnosis", "I10", "d1", 36, 58)]}
    assert (
        merge_feedback(
            [], [example("e1", NOTE, ["I10"], evidence=spans)], evaluation=_dev(), use_evidence=False
        ).evidence
        == {}
    )


def test_training_fingerprint_follows_the_labels() -> None:
    base = [encounter("e1", NOTE, ["E11.9"])]
    plain = merge_feedback(base, [], evaluation=_dev())
    corrected = merge_feedback(base, [example("e1", NOTE, ["E11.65"], ["E11.9"])], evaluation=_dev())
    assert plain.fingerprint != corrected.fingerprint
    assert plain.fingerprint == merge_feedback(base, [], evaluation=_dev()).fingerprint
