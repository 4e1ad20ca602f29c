"""When the EHR sends a new revision of an encounter under review, the decisions that still apply move to
the new item, and the old item links to it.

A decision still applies when the new revision's result has the same code (accept, reject, replace:
the code the decision named) and the code's evidence text is still in the new note, or, for an added
code, when its evidence text is still in the same document of the new note (its offsets follow the text).
Decisions are replayed over the new result in their order; one that no longer fits is dropped. The audit
keeps what was carried and what was dropped; the carried rows keep their coder as actor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from medcode.data.types import Encounter, Evidence, Result
from medcode.serving.auth import Principal
from medcode.serving.orm import DecisionRow, ReviewItemRow
from medcode.serving.services import audit
from medcode.serving.services.review_state import (
    DecisionConflict,
    ItemState,
    StoredDecision,
    decision_fields,
    decision_rows,
    sequence_key,
    stored_decision,
)


@dataclass
class CarryOver:
    carried: list[StoredDecision] = field(default_factory=list)
    dropped: list[StoredDecision] = field(default_factory=list)


def _relocate(note: Encounter, span: Evidence) -> Evidence | None:
    """The span's text in the same document of the new note (the occurrence nearest the old offset)."""
    try:
        text = note.document(span.document_id).text
    except KeyError:
        return None
    quoted = span.text
    if not quoted:
        return None
    starts = []
    at = text.find(quoted)
    while at >= 0:
        starts.append(at)
        at = text.find(quoted, at + 1)
    if not starts:
        return None
    start = min(starts, key=lambda s: abs(s - span.start))
    return Evidence(document_id=span.document_id, start=start, end=start + len(quoted), text=quoted)


def _quoted(note: Encounter, span: Evidence) -> Evidence:
    """The span with its text (read from the note it points into when the span does not carry it)."""
    if span.text:
        return span
    try:
        text = note.document(span.document_id).text[span.start : span.end]
    except KeyError:
        return span
    return span.model_copy(update={"text": text})


def _evidence_still_there(old_note: Encounter, note: Encounter, evidence: Sequence[Evidence]) -> bool:
    return all(_relocate(note, _quoted(old_note, span)) is not None for span in evidence)


def carried_decisions(
    old_result: Result,
    old_note: Encounter,
    old: Sequence[StoredDecision],
    new_result: Result,
    new_note: Encounter,
) -> CarryOver:
    """Which of the old item's decisions (replayed in order) still apply to the new revision."""
    old_state = ItemState(old_result)
    new_state = ItemState(new_result)
    out = CarryOver()
    for decision in old:
        if decision.action == "add":
            spans = [_relocate(new_note, _quoted(old_note, span)) for span in decision.evidence]
            moved = tuple(s for s in spans if s is not None)
            applies = bool(moved) and len(moved) == len(spans)
            candidate = StoredDecision(
                decision.action,
                decision.system,
                decision.code,
                reason=decision.reason,
                evidence=moved,
                title=decision.title,
                actor=decision.actor,
            )
        else:
            suggested = new_state.find(decision.code, decision.system)
            before = old_state.find(decision.code, decision.system)
            old_evidence = before.evidence if before is not None else []
            applies = (
                suggested is not None
                and suggested.origin == "model"
                and _evidence_still_there(old_note, new_note, old_evidence)
            )
            candidate = decision
        if applies:
            try:
                new_state.apply(candidate)
            except DecisionConflict:
                applies = False
        with contextlib.suppress(DecisionConflict):  # stored decisions replay cleanly; be safe anyway
            old_state.apply(decision)
        (out.carried if applies else out.dropped).append(candidate if applies else decision)
    return out


def carry_over(
    session: Session,
    principal: Principal,
    superseded: Sequence[ReviewItemRow],
    old_revisions: dict[int, tuple[Result, Encounter]],
    new_item_id: int,
    new_result: Result,
    new_note: Encounter,
    *,
    encounter_id: str,
    now: datetime,
) -> CarryOver:
    """Link each superseded item to the new one and copy the decisions that still apply (the latest
    superseded item's; older ones were carried into it when it opened)."""
    new_item = session.get(ReviewItemRow, new_item_id)
    assert new_item is not None
    for item in superseded:
        item.superseded_by = new_item_id
    if not superseded:
        return CarryOver()
    latest = max(superseded, key=lambda i: i.id)
    old = [stored_decision(row) for row in decision_rows(session, latest.id)]
    old_result, old_note = old_revisions[latest.id]
    result = carried_decisions(old_result, old_note, old, new_result, new_note)
    for index, decision in enumerate(result.carried):
        session.add(
            DecisionRow(
                decision_id=f"carried:{new_item_id}:{index}",
                item_id=new_item_id,
                actor=decision.actor,
                created_at=now,
                **decision_fields(decision),
            )
        )
    if latest.sequence:
        state = ItemState(new_result)
        for decision in result.carried:
            state.apply(decision)
        present = {sequence_key(c.system, c.code) for c in state.codes}
        kept = [key for key in latest.sequence if key in present]
        new_item.sequence = kept or None
    describe = [
        {"action": d.action, "system": d.system, "code": d.code, "replacement": d.replacement}
        for d in result.carried
    ]
    audit.record(
        session,
        principal,
        "review.decisions.carried",
        "review_item",
        new_item_id,
        encounter_id=encounter_id,
        before={"item_id": latest.id},
        after={
            "item_id": new_item_id,
            "carried": describe,
            "dropped": [{"action": d.action, "system": d.system, "code": d.code} for d in result.dropped],
        },
        at=now,
    )
    return result
