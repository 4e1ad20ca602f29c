"""Finalized reviews as typed training examples: the service's side of the learning-loop contract.

`export_feedback` reads the service database and returns `medcode.data.feedback.FeedbackExample`s (the
contract training reads; see that module for what an example holds).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medcode.data.feedback import FeedbackCode, FeedbackExample, FeedbackNegative, PositiveSource
from medcode.data.types import Encounter, Gold, Result, task_of_system
from medcode.serving.orm import ApiKey, DecisionRow, EncounterRow, ReviewItemRow, RevisionRow
from medcode.serving.services.review import item_state


def export_feedback(
    session: Session,
    *,
    since: datetime | None = None,
    exclude_encounter_ids: Iterable[str] = (),
) -> list[FeedbackExample]:
    """Every encounter's latest finalized review, oldest finalization first."""
    excluded = set(exclude_encounter_ids)
    latest = (
        select(func.max(ReviewItemRow.id))
        .where(ReviewItemRow.status == "final")
        .group_by(ReviewItemRow.encounter_pk)
        .scalar_subquery()
    )
    query = (
        select(ReviewItemRow, EncounterRow, RevisionRow)
        .join(EncounterRow, EncounterRow.id == ReviewItemRow.encounter_pk)
        .join(RevisionRow, RevisionRow.id == ReviewItemRow.revision_id)
        .where(ReviewItemRow.id.in_(latest))
        .order_by(ReviewItemRow.finalized_at, ReviewItemRow.id)
    )
    if since is not None:
        query = query.where(ReviewItemRow.finalized_at >= since)
    names = {key.key_id: key.name for key in session.scalars(select(ApiKey))}
    examples = []
    for item, encounter_row, revision in session.execute(query).all():
        if encounter_row.encounter_id in excluded:
            continue
        examples.append(_example(session, item, encounter_row, revision, names))
    return examples


def _example(
    session: Session,
    item: ReviewItemRow,
    encounter_row: EncounterRow,
    revision: RevisionRow,
    names: dict[str, str],
) -> FeedbackExample:
    result = Result.model_validate(revision.result_json)
    rows = list(
        session.scalars(select(DecisionRow).where(DecisionRow.item_id == item.id).order_by(DecisionRow.id))
    )
    state = item_state(result, rows)
    positives = []
    for code in state.final_codes():
        source: PositiveSource
        if code.origin == "added":
            source = "added"
        elif code.origin == "replacement":
            source = "replacement"
        else:
            source = "accepted" if code.status == "accepted" else "kept"
        positives.append(
            FeedbackCode(
                system=code.system,
                code=code.code,
                description=code.description,
                evidence=code.evidence,
                source=source,
                model_confidence=code.confidence,
            )
        )
    negatives = [
        FeedbackNegative(
            system=code.system,
            code=code.code,
            kind="replaced" if code.status == "replaced" else "rejected",
            reason=code.reason,
            replaced_by=code.replaced_by,
            evidence=code.evidence,
            model_confidence=code.confidence,
        )
        for code in state.negatives()
    ]
    gold = Gold(
        diagnosis=[c.code for c in positives if task_of_system(c.system) == "diagnosis"],
        procedure=[c.code for c in positives if task_of_system(c.system) == "procedure"],
    )
    encounter = Encounter.model_validate(revision.encounter_json).model_copy(update={"gold": gold})
    reviewer = item.finalized_by or ""
    assert item.finalized_at is not None
    return FeedbackExample(
        encounter_id=encounter_row.encounter_id,
        revision=revision.revision,
        item_id=item.id,
        encounter=encounter,
        final_codes=positives,
        rejected=negatives,
        reviewer=reviewer,
        reviewer_name=names.get(reviewer, reviewer),
        finalized_at=item.finalized_at,
        model_version=revision.model_version,
        code_set_version=revision.code_set_version,
    )
