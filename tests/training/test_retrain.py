"""Retraining behind the promotion gate (medcode.training.retrain), MLflow off: merge -> fit -> evaluate -> gate."""

from __future__ import annotations

import pytest

from medcode.data.types import Gold
from medcode.training.feedback import EvaluationLeakError, TrainingSet
from medcode.training.retrain import Champion, FrozenEvaluation, RetrainConfig, evaluate_frozen, retrain
from tests.fakes import FakeCoder

from .fakes import encounter, example

OFF = RetrainConfig(n_resamples=200)


def _dev() -> list:
    return [
        encounter(f"dev-{i}", f"dev note {i}", codes)
        for i, codes in enumerate([["I10"], ["E11.9", "N39.0"], ["J18.9"], ["D50.9", "R50.9"], ["F32.9"]] * 2)
    ]


def _frozen() -> FrozenEvaluation:
    return FrozenEvaluation.of(_dev(), dataset="test", split="dev")


def _gold() -> dict[str, Gold]:
    return {e.encounter_id: e.gold for e in _dev() if e.gold is not None}


def _fit_returning(coder: FakeCoder, seen: list[TrainingSet]):  # type: ignore[no-untyped-def]
    def fit(training: TrainingSet) -> FakeCoder:
        seen.append(training)
        return coder

    return fit


def test_first_model_is_promoted_and_measured_on_the_frozen_set() -> None:
    seen: list[TrainingSet] = []
    base = [encounter("t1", "note one", ["I10"]), encounter("t2", "note two", ["R50.9"])]
    outcome = retrain(
        base, [], _frozen(), _fit_returning(FakeCoder.ranking(_gold()), seen), OFF, champion=None
    )
    assert outcome.promote and outcome.champion is None
    assert outcome.candidate.map_interval.value == pytest.approx(1.0)
    assert [e.encounter_id for e in seen[0].encounters] == ["t1", "t2"]


def test_gate_refuses_a_worse_candidate_and_keeps_the_champion() -> None:
    frozen = _frozen()
    champion = Champion(FakeCoder.ranking(_gold(), version="good"))
    worse = FakeCoder.ranking(_gold(), good=False, version="worse")
    outcome = retrain(
        [encounter("t1", "note", ["I10"])], [], frozen, _fit_returning(worse, []), OFF, champion=champion
    )
    assert not outcome.promote
    assert "worse than the champion" in outcome.reason
    assert outcome.champion is not None and outcome.champion.version == "good"
    assert outcome.difference is not None and outcome.difference.high < 0  # clearly worse, paired CI below 0


def test_tolerance_lets_a_slightly_worse_candidate_through() -> None:
    frozen = _frozen()
    champion = Champion(FakeCoder.ranking(_gold(), version="good"))
    champion.evaluation = evaluate_frozen(champion.coder, frozen, n_resamples=50)
    worse = FakeCoder.ranking(_gold(), good=False, version="worse")
    loose = RetrainConfig(n_resamples=50, tolerance=1.0)
    outcome = retrain(
        [encounter("t1", "note", ["I10"])], [], frozen, _fit_returning(worse, []), loose, champion=champion
    )
    assert outcome.promote


def test_feedback_reaches_the_trainer_and_evaluation_encounters_do_not() -> None:
    seen: list[TrainingSet] = []
    feedback = [example("new-1", "new note", ["I10"], ["E11.9"]), example("dev-0", "dev note 0", ["I10"])]
    retrain([], feedback, _frozen(), _fit_returning(FakeCoder.ranking(_gold()), seen), OFF, champion=None)
    (training,) = seen
    assert [e.encounter_id for e in training.encounters] == ["new-1"]
    assert training.dropped_evaluation == ["dev-0"]
    with pytest.raises(EvaluationLeakError):
        retrain(
            [encounter("dev-1", "x", ["I10"])], [], _frozen(), _fit_returning(FakeCoder.ranking({}), []), OFF
        )


def test_candidate_and_champion_are_scored_on_the_same_frozen_encounters() -> None:
    frozen = _frozen()
    champion_coder = FakeCoder.ranking(_gold(), version="good")
    candidate = FakeCoder.ranking(_gold(), version="also-good", seed=3)
    outcome = retrain([], [], frozen, _fit_returning(candidate, []), OFF, champion=Champion(champion_coder))
    assert champion_coder.calls == candidate.calls == [e.encounter_id for e in frozen.encounters]
    assert outcome.promote  # equal is not worse
    assert outcome.to_json()["delta_vs_champion"]["delta"] == pytest.approx(0.0)
