"""Encounters: suggest, store a revision, route it, read it back.

Routing: the model's `Result.routing` is the policy output; the service adds `forced_review` for
`?route=review` and `resubmitted_after_final` when an encounter a coder already finalized comes again.

Resubmission: each submission with new content creates a new revision. An open review item of an older
revision is superseded (its coder's next request answers 409). A coder's final decision is never
overwritten: the encounter stays `final` with its final codes, and the new revision goes to review; its
finalization then replaces the final codes (both revisions stay stored). Resending the latest content
unchanged stores nothing and answers the current state (a retry is harmless), unless `route=review`
asks to send an auto-accepted encounter to review.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medcode.data.types import Encounter, Result, Routing
from medcode.model.base import Coder
from medcode.serving.auth import Principal
from medcode.serving.db import page
from medcode.serving.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from medcode.serving.orm import EncounterRow, FinalCodeRow, ReviewItemRow, RevisionRow
from medcode.serving.schemas.encounters import (
    EncounterListPublic,
    EncounterPublic,
    EncounterSummaryPublic,
    FinalCodePublic,
)
from medcode.serving.services import audit
from medcode.serving.services.review_carry import carry_over

logger = logging.getLogger(__name__)

PriorityFn = Callable[[Result], float]
FORCED_REVIEW = "forced_review"
RESUBMITTED_AFTER_FINAL = "resubmitted_after_final"


def confidence_priority(result: Result) -> float:
    """Queue priority (lower first): the lowest confidence among the suggested codes; 0 with none.

    The hook for active learning: pass another function (e.g. expected model change) to the app."""
    return min((c.confidence for c in result.codes), default=0.0)


@dataclass(frozen=True)
class EncounterLimits:
    """How much one request may ask of the model (all from settings)."""

    max_note_chars: int = 200_000
    max_documents: int = 50
    max_encounter_chars: int = 400_000


def check_text(value: str, where: str) -> None:
    """422 for text no database or tokenizer takes: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise InvalidRequest(f"{where} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{where} contains a lone surrogate (not valid Unicode text)") from None


def check_encounter(encounter: Encounter, limits: EncounterLimits) -> None:
    """Refuse what the model must not run on: too many documents or characters (413, naming the
    limit), empty notes and text that is not valid Unicode (422)."""
    if len(encounter.documents) > limits.max_documents:
        raise PayloadTooLarge(
            f"the encounter has {len(encounter.documents)} documents; the limit is {limits.max_documents}"
            " (MEDCODE_MAX_DOCUMENTS)"
        )
    check_text(encounter.encounter_id, "encounter_id")
    if encounter.date is not None:
        check_text(encounter.date, "date")
    total = 0
    for index, doc in enumerate(encounter.documents):
        check_text(doc.document_id, f"documents[{index}].document_id")
        check_text(doc.type, f"documents[{index}].type")
        if len(doc.text) > limits.max_note_chars:
            raise PayloadTooLarge(
                f"document {doc.document_id!r} has {len(doc.text)} characters; the limit is"
                f" {limits.max_note_chars} (MEDCODE_MAX_NOTE_CHARS)"
            )
        if not doc.text.strip():
            raise InvalidRequest(f"document {doc.document_id!r} has no text (empty or only whitespace)")
        check_text(doc.text, f"documents[{index}].text")
        total += len(doc.text)
    if total > limits.max_encounter_chars:
        raise PayloadTooLarge(
            f"the encounter's documents have {total} characters together; the limit is"
            f" {limits.max_encounter_chars} (MEDCODE_MAX_ENCOUNTER_CHARS)"
        )


def check_owner(session: Session, principal: Principal, encounter_id: str) -> None:
    """409 before any model work when an integration submits an encounter id another client uses."""
    scope = owner_scope(principal)
    if scope is None:
        return
    owner = session.scalar(select(EncounterRow.owner).where(EncounterRow.encounter_id == encounter_id))
    session.rollback()
    if owner is not None and owner != scope:
        raise Conflict(
            f"encounter id {encounter_id!r} is in use by another client; choose another id",
            code="encounter_id_taken",
        )


def owner_scope(principal: Principal) -> str | None:
    """The owner an integration key is confined to (its own key id); None: the role sees every encounter."""
    return principal.key_id if principal.role == "integration" else None


def suggest(coder: Coder, encounter: Encounter) -> Result:
    """Run the model (no storage). The result always names the encounter it was asked about."""
    result = coder.suggest(encounter)
    if result.encounter_id != encounter.encounter_id:
        result = result.model_copy(update={"encounter_id": encounter.encounter_id})
    return result


def content_hash(encounter: Encounter) -> str:
    payload = encounter.model_dump(mode="json", exclude={"gold"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def submit_encounter(
    session: Session,
    principal: Principal,
    encounter: Encounter,
    result: Result,
    *,
    force_review: bool = False,
    now: datetime,
    priority_fn: PriorityFn = confidence_priority,
) -> tuple[EncounterPublic, bool]:
    """Store a revision with its result and route it; returns the encounter and whether it was new."""
    for attempt in range(2):
        try:
            return _submit(session, principal, encounter, result, force_review, now, priority_fn)
        except IntegrityError:  # two first submissions of one encounter raced; the second becomes a revision
            session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _submit(
    session: Session,
    principal: Principal,
    encounter: Encounter,
    result: Result,
    force_review: bool,
    now: datetime,
    priority_fn: PriorityFn,
) -> tuple[EncounterPublic, bool]:
    digest = content_hash(encounter)
    row = session.scalar(
        select(EncounterRow).where(EncounterRow.encounter_id == encounter.encounter_id).with_for_update()
    )
    before: dict[str, Any] | None = None
    scope = owner_scope(principal)
    if row is not None and scope is not None and row.owner != scope:
        session.rollback()
        raise Conflict(
            f"encounter id {encounter.encounter_id!r} is in use by another client; choose another id",
            code="encounter_id_taken",
        )
    if row is not None:
        latest = _revision(session, row, row.current_revision)
        if latest.content_hash == digest and not (force_review and row.status == "auto_accepted"):
            view = _view(session, row)
            session.rollback()
            return view, False
        before = _state_summary(session, row)
    else:
        row = EncounterRow(
            encounter_id=encounter.encounter_id,
            status="in_review",
            current_revision=0,
            final_revision=None,
            created_at=now,
            updated_at=now,
            owner=principal.key_id,
        )
        session.add(row)
        session.flush()

    reasons = list(result.routing.reasons)
    extra = [FORCED_REVIEW] if force_review else []
    if row.status == "final":
        extra.append(RESUBMITTED_AFTER_FINAL)
    reasons += [r for r in extra if r not in reasons]
    decision = "review" if (extra or result.routing.decision == "review") else "auto_accept"
    stored = result.model_copy(update={"routing": Routing(decision=decision, reasons=reasons)})

    superseded = _supersede_open_items(session, principal, row, now)
    revision = RevisionRow(
        encounter_pk=row.id,
        revision=row.current_revision + 1,
        content_hash=digest,
        encounter_json=encounter.model_dump(mode="json", exclude={"gold"}),
        result_json=stored.model_dump(mode="json"),
        model_version=stored.model_version,
        code_set_version=stored.code_set_version,
        decision=decision,
        reasons=reasons,
        forced_review=bool(extra),
        created_by=principal.key_id,
        created_at=now,
    )
    session.add(revision)
    session.flush()
    row.current_revision = revision.revision
    row.updated_at = now
    item_id = None
    if decision == "review":
        if row.status != "final":
            row.status, row.final_revision = "in_review", None
        item_id = _open_item(session, row, revision, stored, priority_fn(stored), now)
        if superseded:
            carry_over(
                session,
                principal,
                superseded,
                _revisions_of(session, superseded),
                item_id,
                stored,
                encounter,
                encounter_id=encounter.encounter_id,
                now=now,
            )
    else:
        row.status, row.final_revision = "auto_accepted", revision.revision
        _store_final_codes(session, row, revision, stored, now)
    session.flush()
    audit.record(
        session,
        principal,
        "encounter.submitted",
        "encounter",
        encounter.encounter_id,
        encounter_id=encounter.encounter_id,
        before=before,
        after=_state_summary(session, row)
        | {"routing": stored.routing.model_dump(), "review_item_id": item_id},
        model_version=stored.model_version,
        at=now,
    )
    view = _view(session, row)
    session.commit()
    return view, True


def _revisions_of(session: Session, items: list[ReviewItemRow]) -> dict[int, tuple[Result, Encounter]]:
    """Each item's result and note (the revision it reviews)."""
    out = {}
    for item in items:
        revision = session.get(RevisionRow, item.revision_id)
        assert revision is not None
        out[item.id] = (
            Result.model_validate(revision.result_json),
            Encounter.model_validate(revision.encounter_json),
        )
    return out


def _supersede_open_items(
    session: Session, principal: Principal, row: EncounterRow, now: datetime
) -> list[ReviewItemRow]:
    """Mark the encounter's open items superseded; returns them (the new item links to them)."""
    items = list(
        session.scalars(
            select(ReviewItemRow)
            .where(ReviewItemRow.encounter_pk == row.id, ReviewItemRow.status == "open")
            .with_for_update()
        )
    )
    for item in items:
        audit.record(
            session,
            principal,
            "review.superseded",
            "review_item",
            item.id,
            encounter_id=row.encounter_id,
            before={"status": item.status, "lease_holder": item.lease_holder},
            after={"status": "superseded"},
            at=now,
        )
        item.status, item.lease_holder, item.lease_expires_at = "superseded", None, None
    return items


def _open_item(
    session: Session, row: EncounterRow, revision: RevisionRow, result: Result, priority: float, now: datetime
) -> int:
    kinds = sorted({reason.split(":", 1)[0] for reason in result.routing.reasons})
    item = ReviewItemRow(
        encounter_pk=row.id,
        revision_id=revision.id,
        status="open",
        priority=float(priority),
        reasons=list(result.routing.reasons),
        reason_kinds="|" + "|".join(kinds) + "|" if kinds else "|",
        n_codes=len(result.codes),
        lowest_confidence=min((c.confidence for c in result.codes), default=None),
        lease_holder=None,
        lease_expires_at=None,
        claims=0,
        created_at=now,
    )
    session.add(item)
    session.flush()
    return item.id


def _store_final_codes(
    session: Session, row: EncounterRow, revision: RevisionRow, result: Result, now: datetime
) -> None:
    for position, code in enumerate(result.codes):
        session.add(
            FinalCodeRow(
                encounter_pk=row.id,
                revision_id=revision.id,
                item_id=None,
                position=position,
                system=code.system,
                code=code.code,
                description=code.description,
                evidence=[e.model_dump(mode="json") for e in code.evidence],
                source="auto",
                finalized_by=None,
                created_at=now,
            )
        )


def _revision(session: Session, row: EncounterRow, number: int) -> RevisionRow:
    revision = session.scalar(
        select(RevisionRow).where(RevisionRow.encounter_pk == row.id, RevisionRow.revision == number)
    )
    if revision is None:
        raise LookupError(f"revision {number} of encounter {row.id} is missing")
    return revision


def final_codes_of(session: Session, row: EncounterRow) -> list[FinalCodePublic]:
    if row.final_revision is None:
        return []
    revision = _revision(session, row, row.final_revision)
    codes = session.scalars(
        select(FinalCodeRow).where(FinalCodeRow.revision_id == revision.id).order_by(FinalCodeRow.position)
    )
    return [
        FinalCodePublic(
            system=c.system, code=c.code, description=c.description, evidence=c.evidence, source=c.source
        )  # type: ignore[arg-type]
        for c in codes
    ]


def _open_item_id(session: Session, row: EncounterRow) -> int | None:
    return session.scalar(
        select(ReviewItemRow.id).where(ReviewItemRow.encounter_pk == row.id, ReviewItemRow.status == "open")
    )


def _state_summary(session: Session, row: EncounterRow) -> dict[str, Any]:
    return {
        "status": row.status,
        "revision": row.current_revision,
        "final_revision": row.final_revision,
        "final_codes": [f"{c.system}:{c.code}" for c in final_codes_of(session, row)],
    }


def _view(session: Session, row: EncounterRow) -> EncounterPublic:
    latest = _revision(session, row, row.current_revision)
    item_id = _open_item_id(session, row)
    return EncounterPublic(
        encounter_id=row.encounter_id,
        status=row.status,  # type: ignore[arg-type]
        revision=row.current_revision,
        result=Result.model_validate(latest.result_json),
        final_codes=final_codes_of(session, row),
        final_revision=row.final_revision,
        review_pending=item_id is not None,
        review_item_id=item_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_encounter(session: Session, encounter_id: str, owner: str | None = None) -> EncounterPublic:
    """The encounter's state; with `owner` (an integration's key id) only an encounter it submitted."""
    row = session.scalar(select(EncounterRow).where(EncounterRow.encounter_id == encounter_id))
    if row is None or (owner is not None and row.owner != owner):
        raise NotFound(f"no encounter {encounter_id!r}", code="encounter_not_found")
    return _view(session, row)


def list_encounters(
    session: Session,
    *,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    owner: str | None = None,
) -> EncounterListPublic:
    query = select(EncounterRow, RevisionRow).join(
        RevisionRow,
        (RevisionRow.encounter_pk == EncounterRow.id)
        & (RevisionRow.revision == EncounterRow.current_revision),
    )
    if owner is not None:
        query = query.where(EncounterRow.owner == owner)
    if status is not None:
        query = query.where(EncounterRow.status == status)
    if since is not None:
        query = query.where(EncounterRow.updated_at >= since)
    total, rows = page(
        session, query, EncounterRow.updated_at.desc(), EncounterRow.id.desc(), limit=limit, offset=offset
    )
    pending = set(
        session.scalars(
            select(ReviewItemRow.encounter_pk).where(
                ReviewItemRow.status == "open", ReviewItemRow.encounter_pk.in_([enc.id for enc, _ in rows])
            )
        )
    )
    items = [
        EncounterSummaryPublic(
            encounter_id=enc.encounter_id,
            status=enc.status,  # type: ignore[arg-type]
            revision=enc.current_revision,
            final_revision=enc.final_revision,
            review_pending=enc.id in pending,
            routing_decision=rev.decision,
            reasons=list(rev.reasons),
            model_version=rev.model_version,
            code_set_version=rev.code_set_version,
            created_at=enc.created_at,
            updated_at=enc.updated_at,
        )
        for enc, rev in rows
    ]
    return EncounterListPublic(items=items, total=total, limit=limit, offset=offset)
