"""Index-walk confidence floors: which walk codes vouch for a candidate, how the floor is fitted on training
notes, that a trained default model gives a walk code its floor for the decision only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from medcode.data.types import Assertion, Document, Encounter, Mention
from medcode.model.candidates.generate import Candidate, EncounterView, Hit
from medcode.model.candidates.index_walk import SOURCE as WALK
from medcode.model.thresholds import TaskThresholds
from medcode.model.trained.coder import DefaultConfig, walk_kind
from medcode.training.default import fit_walk_floors, wilson_lower_bound

CM = "ICD-10-CM"


def _view(*assertions: Assertion, clauses_from: int = -1) -> EncounterView:
    text = "Sprain of right ankle. Follow-up visit for it."
    mentions = [
        Mention(start=0, end=21, text="Sprain of right ankle", assertion=a, type="injury") for a in assertions
    ]
    encounter = Encounter(encounter_id="e", documents=[Document(document_id="d1", text=text)])
    return EncounterView(encounter, mentions, [], n_pipeline=clauses_from)


def _candidate(code: str, *hits: Hit) -> Candidate:
    return Candidate(CM, code, present=list(hits))


def test_walk_kind_needs_a_full_walk_on_a_certain_current_mention() -> None:
    view = _view(Assertion(), Assertion(possible=True), Assertion(historical=True), clauses_from=3)
    assert walk_kind(view, _candidate("S93.401", Hit(0, WALK, 1.0))) == "mention"
    assert walk_kind(view, _candidate("S93.401", Hit(0, WALK, 0.75))) is None  # words left unused
    assert walk_kind(view, _candidate("S93.401", Hit(1, WALK, 1.0))) is None  # possible
    assert walk_kind(view, _candidate("S93.401", Hit(2, WALK, 1.0))) is None  # historical
    assert walk_kind(view, _candidate("S93.401", Hit(0, "lexicon", 1.0))) is None  # not the walk


def test_walk_kind_tells_clauses_from_mentions() -> None:
    view = _view(Assertion(), Assertion(), clauses_from=1)
    assert walk_kind(view, _candidate("S93.401", Hit(1, WALK, 1.0))) == "clause"
    assert walk_kind(view, _candidate("S93.401", Hit(1, WALK, 1.0), Hit(0, WALK, 1.0))) == "mention"
    assert walk_kind(view, _candidate("S93.401", Hit(1, WALK, 1.0), Hit(0, WALK, 1.0)), {0}) == "clause"


def test_wilson_lower_bound_matches_hand_computed_values() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(5, 10) == pytest.approx(0.2366, abs=1e-4)
    assert wilson_lower_bound(10, 10) == pytest.approx(0.7225, abs=1e-4)
    assert wilson_lower_bound(60, 100) < 0.6 < wilson_lower_bound(600, 1000) + 0.05


def test_floors_are_the_lower_bound_of_walk_precision_on_training_notes() -> None:
    view = _view(Assertion(), Assertion(), clauses_from=1)
    notes, gold = [], []
    for i in range(40):
        candidates = {
            (CM, "S93.401"): _candidate("S93.401", Hit(0, WALK, 1.0)),  # right in 30 of 40 notes
            (CM, "M25.571"): _candidate("M25.571", Hit(1, WALK, 1.0)),  # a clause walk, never right
            (CM, "R52"): _candidate("R52", Hit(0, "lexicon", 1.0)),  # no walk: not counted
        }
        notes.append((view, candidates))
        gold.append({"S93.401A", "R52"} if i < 30 else {"R52"})  # a 7th character extends the walk code
    floors = fit_walk_floors(notes, gold)
    assert floors["mention"] == pytest.approx(wilson_lower_bound(30, 40), abs=1e-4)
    assert floors["clause"] == 0.0
    assert fit_walk_floors(notes[:10], gold[:10]) == {}  # too few to trust


def test_trained_model_gives_only_a_walk_code_its_floor() -> None:
    from medcode.model.trained.coder import DefaultCoder, Prepared

    view = _view(Assertion(), clauses_from=-1)
    prepared = Prepared(
        view,
        {
            (CM, "S93.401"): _candidate("S93.401", Hit(0, WALK, 1.0)),
            (CM, "M25.571"): _candidate("M25.571", Hit(0, "lexical", 0.9)),
        },
        view.encounter.documents[0].text,
        None,
    )

    class _Resources:
        class catalog:
            @staticmethod
            def title(system: str, code: str) -> str:
                return code

    def scored(floors: dict[str, float], other: float = 0.1) -> dict[str, tuple[float, float]]:
        coder = DefaultCoder.__new__(DefaultCoder)
        coder.config = DefaultConfig(walk_floors=floors)
        coder.resources = _Resources()  # type: ignore[assignment]
        coder.tasks = {"diagnosis": SimpleNamespace(thresholds=TaskThresholds(decision=0.3))}  # type: ignore[dict-item]
        out = coder._scored(prepared, "diagnosis", ["S93.401", "M25.571"], np.array([0.1, other]), {})
        return {s.code: (round(s.confidence, 6), s.floor) for s in out}

    assert scored({}) == {"S93.401": (0.1, 0.0), "M25.571": (0.1, 0.0)}
    # the walk code gets its floor for the decision; its confidence (and ranked place) stays the ranker's
    assert scored({"mention": 0.55}) == {"S93.401": (0.1, 0.55), "M25.571": (0.1, 0.0)}
    # the mention already has a code above the decision threshold: the walk adds no second one
    assert scored({"mention": 0.55}, other=0.8)["S93.401"] == (0.1, 0.0)


def test_a_floor_decides_the_suggestion_but_not_the_ranked_order() -> None:
    from medcode.data.types import Evidence
    from medcode.model.result import Scored, split_by_threshold

    evidence = [Evidence(document_id="d1", start=0, end=6, text="Sprain")]
    scored = [
        Scored(CM, "S93.401A", 0.1, evidence, floor=0.55),
        Scored(CM, "M25.571", 0.2, evidence),
        Scored(CM, "R52", 0.05, evidence, floor=0.2),
    ]
    codes, candidates = split_by_threshold(scored, lambda task: TaskThresholds(decision=0.3))
    assert [c.code for c in codes] == ["S93.401A"]
    assert codes[0].confidence == pytest.approx(0.1)
    assert [c.code for c in candidates] == ["M25.571", "R52"]
