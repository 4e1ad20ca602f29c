"""The review queue: list, claim with a lease, decide per code, finalize, release.

Claiming is atomic on SQLite and PostgreSQL alike: candidates are read (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, under SQLite's `BEGIN IMMEDIATE` write lock there), then taken with a conditional
`UPDATE ... WHERE status = 'open' AND (lease_holder IS NULL OR lease_expires_at <= now)` whose row count
must be one. An expired lease is as good as none: the item goes back to the queue. A coder who already
holds a live lease gets that item again (a retried claim never strands an item).

Decisions, finalize and release lock the item row and answer 409 when the caller does not hold a live
lease, when the item is final or superseded, or when a decision does not fit the item's codes. Each
decision is stored once: a client `decision_id` (or an `Idempotency-Key` header, which names the
decisions of one request) makes a retried request a replay that stores nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from medcode.data.types import Encounter, Evidence, Result
from medcode.serving.auth import Principal
from medcode.serving.errors import Conflict, InvalidRequest, NotFound
from medcode.serving.orm import DecisionRow, EncounterRow, FinalCodeRow, ReviewItemRow, RevisionRow
from medcode.serving.schemas.encounters import FinalCodePublic
from medcode.serving.schemas.review import (
    ClaimPublic,
    DecisionCreate,
    DecisionPublic,
    DecisionsResultPublic,
    FinalizePublic,
    ItemCodePublic,
    QueueItemPublic,
    QueuePublic,
    ReleasePublic,
    ReviewItemPublic,
)
from medcode.serving.services import audit
from medcode.serving.services.codes import lookup_code, normalize_key
from medcode.serving.services.encounters import final_codes_of
from medcode.serving.services.review_state import CodeState, DecisionConflict, ItemState, StoredDecision

CLAIM_CANDIDATES = 1
"""Rows locked per attempt: one, so concurrent claimers skip each other's row rather than all of them."""


@dataclass
class _Loaded:
    item: ReviewItemRow
    encounter: EncounterRow
    revision: RevisionRow

    @property
    def result(self) -> Result:
        return Result.model_validate(self.revision.result_json)

    @property
    def note(self) -> Encounter:
        return Encounter.model_validate(self.revision.encounter_json)


# -- queue -------------------------------------------------------------------------------------------


def list_queue(
    session: Session,
    *,
    now: datetime,
    reason: str | None = None,
    unclaimed_only: bool = False,
    max_priority: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> QueuePublic:
    query = (
        select(ReviewItemRow, EncounterRow.encounter_id, RevisionRow.revision)
        .join(EncounterRow, EncounterRow.id == ReviewItemRow.encounter_pk)
        .join(RevisionRow, RevisionRow.id == ReviewItemRow.revision_id)
        .where(ReviewItemRow.status == "open")
    )
    if reason:
        query = query.where(
            ReviewItemRow.reason_kinds.contains(f"|{reason.split(':', 1)[0]}|", autoescape=True)
        )
    if unclaimed_only:
        query = query.where(_free(now))
    if max_priority is not None:
        query = query.where(ReviewItemRow.priority <= max_priority)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(ReviewItemRow.priority, ReviewItemRow.id).limit(limit).offset(offset)
    ).all()
    items = []
    for item, encounter_id, revision in rows:
        held = (
            item.lease_holder is not None
            and item.lease_expires_at is not None
            and item.lease_expires_at > now
        )
        items.append(
            QueueItemPublic(
                item_id=item.id,
                encounter_id=encounter_id,
                revision=revision,
                priority=item.priority,
                reasons=list(item.reasons),
                n_codes=item.n_codes,
                lowest_confidence=item.lowest_confidence,
                created_at=item.created_at,
                claimed=held,
                lease_holder=item.lease_holder if held else None,
                lease_expires_at=item.lease_expires_at if held else None,
            )
        )
    session.rollback()
    return QueuePublic(items=items, total=total)


def _free(now: datetime) -> Any:
    return or_(ReviewItemRow.lease_holder.is_(None), ReviewItemRow.lease_expires_at <= now)


def claim_next(
    session: Session, principal: Principal, *, now: datetime, lease_seconds: float
) -> ClaimPublic | None:
    """Lease the next item (lowest priority value first) to `principal`; None when nothing is free."""
    expires = now + timedelta(seconds=lease_seconds)
    held = session.scalar(
        select(ReviewItemRow)
        .where(
            ReviewItemRow.status == "open",
            ReviewItemRow.lease_holder == principal.key_id,
            ReviewItemRow.lease_expires_at > now,
        )
        .order_by(ReviewItemRow.priority, ReviewItemRow.id)
        .limit(1)
        .with_for_update()
    )
    if held is not None:
        held.lease_expires_at = expires
        claim = _claim_public(session, held, expires, resumed=True)
        session.commit()
        return claim
    while True:
        candidates = list(
            session.scalars(
                select(ReviewItemRow)
                .where(ReviewItemRow.status == "open", _free(now))
                .order_by(ReviewItemRow.priority, ReviewItemRow.id)
                .limit(CLAIM_CANDIDATES)
                .with_for_update(skip_locked=True)
            )
        )
        if not candidates:
            session.rollback()
            return None
        for item in candidates:
            previous = {"lease_holder": item.lease_holder, "lease_expires_at": _iso(item.lease_expires_at)}
            taken = session.execute(
                update(ReviewItemRow)
                .where(ReviewItemRow.id == item.id, ReviewItemRow.status == "open", _free(now))
                .values(
                    lease_holder=principal.key_id, lease_expires_at=expires, claims=ReviewItemRow.claims + 1
                )
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                continue
            session.refresh(item)
            loaded = _load(session, item.id)
            audit.record(
                session,
                principal,
                "review.claimed",
                "review_item",
                item.id,
                encounter_id=loaded.encounter.encounter_id,
                before=previous,
                after={"lease_holder": principal.key_id, "lease_expires_at": _iso(expires)},
                model_version=loaded.revision.model_version,
                at=now,
            )
            claim = _claim_public(session, item, expires, resumed=False)
            session.commit()
            return claim
        session.commit()  # every candidate was taken meanwhile: look again


def _claim_public(session: Session, item: ReviewItemRow, expires: datetime, *, resumed: bool) -> ClaimPublic:
    loaded = _load(session, item.id)
    return ClaimPublic(
        item_id=item.id,
        encounter_id=loaded.encounter.encounter_id,
        revision=loaded.revision.revision,
        lease_expires_at=expires,
        resumed=resumed,
    )


# -- one item ----------------------------------------------------------------------------------------


def _load(session: Session, item_id: int, *, lock: bool = False) -> _Loaded:
    """The item with its encounter and revision; `lock` takes row locks, encounter first then item
    (the order resubmission uses), so that concurrent requests queue instead of deadlocking."""
    item = session.get(ReviewItemRow, item_id)
    if item is None:
        raise NotFound(f"no review item {item_id}", code="item_not_found")
    if lock:
        session.execute(select(EncounterRow.id).where(EncounterRow.id == item.encounter_pk).with_for_update())
        item = session.scalar(
            select(ReviewItemRow)
            .where(ReviewItemRow.id == item_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert item is not None
    encounter = session.get(EncounterRow, item.encounter_pk, populate_existing=lock)
    revision = session.get(RevisionRow, item.revision_id)
    assert encounter is not None and revision is not None
    return _Loaded(item, encounter, revision)


def _decisions_of(session: Session, item_id: int) -> list[DecisionRow]:
    return list(
        session.scalars(select(DecisionRow).where(DecisionRow.item_id == item_id).order_by(DecisionRow.id))
    )


def _stored(row: DecisionRow, titles: dict[str, str] | None = None) -> StoredDecision:
    title_key = row.replacement if row.action == "replace" else row.code
    return StoredDecision(
        action=row.action,
        system=row.system,
        code=row.code,
        replacement=row.replacement,
        replacement_system=row.replacement_system,
        reason=row.reason,
        evidence=tuple(Evidence.model_validate(e) for e in row.evidence),
        title=(titles or {}).get(title_key or "", ""),
        actor=row.actor,
    )


def item_state(result: Result, rows: Sequence[DecisionRow]) -> ItemState:
    """Replay an item's stored decisions over its result (titles of added codes looked up again)."""
    titles: dict[str, str] = {}
    for row in rows:
        if row.action in ("add", "replace"):
            code = row.replacement if row.action == "replace" else row.code
            system = row.replacement_system if row.action == "replace" else row.system
            ref = lookup_code(code or "", system)
            titles[code or ""] = ref.title if ref else ""
    return ItemState.replay(result, [_stored(row, titles) for row in rows])


def _code_public(state: CodeState) -> ItemCodePublic:
    return ItemCodePublic(
        system=state.system,
        code=state.code,
        description=state.description,
        confidence=state.confidence,
        evidence=state.evidence,
        rationale=state.rationale,
        warnings=state.warnings,
        origin=state.origin,
        status=state.status,  # type: ignore[arg-type]
        reason=state.reason,
        replaced_by=state.replaced_by,
    )


def _decision_public(row: DecisionRow) -> DecisionPublic:
    return DecisionPublic.model_validate(row, from_attributes=True)


def get_item(session: Session, item_id: int) -> ReviewItemPublic:
    loaded = _load(session, item_id)
    rows = _decisions_of(session, item_id)
    state = item_state(loaded.result, rows)
    note = loaded.note
    item = loaded.item
    view = ReviewItemPublic(
        item_id=item.id,
        encounter_id=loaded.encounter.encounter_id,
        revision=loaded.revision.revision,
        status=item.status,  # type: ignore[arg-type]
        priority=item.priority,
        reasons=list(item.reasons),
        lease_holder=item.lease_holder,
        lease_expires_at=item.lease_expires_at,
        patient=note.patient,
        setting=note.setting,
        date=note.date,
        documents=note.documents,
        result=loaded.result,
        codes=[_code_public(s) for s in state.codes],
        decisions=[_decision_public(r) for r in rows],
        created_at=item.created_at,
        finalized_at=item.finalized_at,
        finalized_by=item.finalized_by,
    )
    session.rollback()
    return view


def _require_lease(loaded: _Loaded, principal: Principal, now: datetime) -> None:
    item = loaded.item
    if item.status == "final":
        raise Conflict(f"review item {item.id} is already final", code="item_final")
    if item.status == "superseded":
        raise Conflict(
            f"review item {item.id} was superseded by a newer revision of the encounter",
            code="item_superseded",
        )
    if item.lease_holder != principal.key_id:
        if (
            item.lease_holder is not None
            and item.lease_expires_at is not None
            and item.lease_expires_at > now
        ):
            raise Conflict(f"review item {item.id} is held by another coder", code="lease_held_by_another")
        raise Conflict(
            f"you do not hold a lease on review item {item.id}; claim it first", code="lease_not_held"
        )
    if item.lease_expires_at is None or item.lease_expires_at <= now:
        raise Conflict(f"your lease on review item {item.id} has expired; claim again", code="lease_expired")


def _decision_ids(
    decisions: Sequence[DecisionCreate], item_id: int, idempotency_key: str | None
) -> list[str]:
    ids = []
    for index, decision in enumerate(decisions):
        if decision.decision_id:
            ids.append(decision.decision_id)
        elif idempotency_key:
            ids.append(f"{idempotency_key[:100]}:{item_id}:{index}")
        else:
            ids.append(uuid.uuid4().hex)
    if len(set(ids)) != len(ids):
        raise InvalidRequest("decision_id values must be unique within a request")
    return ids


def _validate_evidence(note: Encounter, spans: Sequence[Any]) -> list[Evidence]:
    checked = []
    for span in spans:
        try:
            text = note.document(span.document_id).text
        except KeyError:
            raise InvalidRequest(f"evidence names unknown document {span.document_id!r}") from None
        if not 0 <= span.start < span.end <= len(text):
            raise InvalidRequest(
                f"evidence span [{span.start}, {span.end}) is outside document {span.document_id!r} "
                f"(length {len(text)})"
            )
        quoted = text[span.start : span.end]
        if span.text is not None and span.text != quoted:
            raise InvalidRequest(f"evidence text does not match document {span.document_id!r} at the offsets")
        checked.append(Evidence(document_id=span.document_id, start=span.start, end=span.end, text=quoted))
    return checked


def _resolve(code: str, system: str | None) -> tuple[str, str, str]:
    ref = lookup_code(code, system)
    if ref is None:
        where = f" in {system}" if system else ""
        raise InvalidRequest(f"unknown code {code!r}{where}")
    return ref.system, ref.code, ref.title


def _prepare(
    state: ItemState, decision: DecisionCreate, note: Encounter, actor: str
) -> tuple[StoredDecision, dict[str, Any]]:
    """Canonical codes, validated evidence; returns the decision to apply and the row's fields."""
    if decision.action == "add":
        system, code, title = _resolve(decision.code, decision.system)
        evidence = _validate_evidence(note, decision.evidence)
        stored = StoredDecision("add", system, code, evidence=tuple(evidence), title=title, actor=actor)
    else:
        current = state.find(decision.code, decision.system)
        if current is None:
            raise Conflict(f"{decision.code} is not a code of this item", code="code_not_in_item")
        replacement = replacement_system = None
        title = ""
        if decision.action == "replace":
            assert decision.replacement is not None
            replacement_system, replacement, title = _resolve(
                decision.replacement, decision.replacement_system or current.system
            )
            if replacement_system == current.system and replacement == current.code:
                raise InvalidRequest(f"{decision.code} cannot replace itself")
        stored = StoredDecision(
            decision.action,
            current.system,
            current.code,
            replacement=replacement,
            replacement_system=replacement_system,
            reason=(decision.reason or None),
            title=title,
            actor=actor,
        )
    fields = {
        "action": stored.action,
        "system": stored.system,
        "code": stored.code,
        "replacement": stored.replacement,
        "replacement_system": stored.replacement_system,
        "reason": stored.reason,
        "evidence": [e.model_dump(mode="json") for e in stored.evidence],
    }
    return stored, fields


def _same_request(row: DecisionRow, decision: DecisionCreate, item_id: int, actor: str) -> bool:
    """Whether a stored decision is the one a retried request sends again (same coder, item, action, codes)."""
    if row.actor != actor:
        return False
    same_code = normalize_key(row.code) == normalize_key(decision.code)
    same_replacement = normalize_key(row.replacement or "") == normalize_key(decision.replacement or "")
    return row.item_id == item_id and row.action == decision.action and same_code and same_replacement


def record_decisions(
    session: Session,
    item_id: int,
    principal: Principal,
    decisions: Sequence[DecisionCreate],
    *,
    now: datetime,
    lease_seconds: float,
    idempotency_key: str | None = None,
) -> DecisionsResultPublic:
    loaded = _load(session, item_id, lock=True)
    ids = _decision_ids(decisions, item_id, idempotency_key)
    existing = {
        r.decision_id: r for r in session.scalars(select(DecisionRow).where(DecisionRow.decision_id.in_(ids)))
    }
    for decision_id, decision in zip(ids, decisions, strict=True):
        row = existing.get(decision_id)
        if row is not None and not _same_request(row, decision, item_id, principal.key_id):
            raise Conflict(
                f"decision_id {decision_id!r} was already used for another decision",
                code="decision_id_reused",
            )
    replayed = [_decision_public(existing[i]) for i in ids if i in existing]
    fresh = [(i, d) for i, d in zip(ids, decisions, strict=True) if i not in existing]
    if not fresh:
        state = item_state(loaded.result, _decisions_of(session, item_id))
        out = DecisionsResultPublic(
            item_id=item_id,
            stored=[],
            replayed=replayed,
            codes=[_code_public(s) for s in state.codes],
            lease_expires_at=loaded.item.lease_expires_at,
        )
        session.rollback()
        return out

    _require_lease(loaded, principal, now)
    state = item_state(loaded.result, _decisions_of(session, item_id))
    note = loaded.note
    new_rows = []
    for decision_id, decision in fresh:
        before = _code_snapshot(state, decision.code)
        stored, fields = _prepare(state, decision, note, principal.key_id)
        try:
            state.apply(stored)
        except DecisionConflict as exc:
            raise Conflict(str(exc), code=exc.code) from None
        row = DecisionRow(
            decision_id=decision_id, item_id=item_id, actor=principal.key_id, created_at=now, **fields
        )
        session.add(row)
        new_rows.append(row)
        audit.record(
            session,
            principal,
            f"review.decision.{stored.action}",
            "decision",
            decision_id,
            encounter_id=loaded.encounter.encounter_id,
            before=before,
            after={
                "item_id": item_id,
                **fields,
                "code_status": _code_snapshot(state, stored.code),
            },
            model_version=loaded.revision.model_version,
            at=now,
        )
    loaded.item.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.flush()
    out = DecisionsResultPublic(
        item_id=item_id,
        stored=[_decision_public(r) for r in new_rows],
        replayed=replayed,
        codes=[_code_public(s) for s in state.codes],
        lease_expires_at=loaded.item.lease_expires_at,
    )
    session.commit()
    return out


def _code_snapshot(state: ItemState, code: str) -> dict[str, Any] | None:
    current = state.find(code)
    if current is None:
        return None
    return {"system": current.system, "code": current.code, "status": current.status}


def finalize(session: Session, item_id: int, principal: Principal, *, now: datetime) -> FinalizePublic:
    loaded = _load(session, item_id, lock=True)
    _require_lease(loaded, principal, now)
    state = item_state(loaded.result, _decisions_of(session, item_id))
    encounter, item, revision = loaded.encounter, loaded.item, loaded.revision
    before = {
        "status": encounter.status,
        "final_revision": encounter.final_revision,
        "final_codes": [f"{c.system}:{c.code}" for c in final_codes_of(session, encounter)],
    }
    final = state.final_codes()
    for position, code in enumerate(final):
        session.add(
            FinalCodeRow(
                encounter_pk=encounter.id,
                revision_id=revision.id,
                item_id=item.id,
                position=position,
                system=code.system,
                code=code.code,
                description=code.description,
                evidence=[e.model_dump(mode="json") for e in code.evidence],
                source="model" if code.origin == "model" else "coder",
                finalized_by=principal.key_id,
                created_at=now,
            )
        )
    item.status, item.finalized_at, item.finalized_by = "final", now, principal.key_id
    item.lease_holder, item.lease_expires_at = None, None
    encounter.status, encounter.final_revision, encounter.updated_at = "final", revision.revision, now
    session.flush()
    audit.record(
        session,
        principal,
        "review.finalized",
        "review_item",
        item.id,
        encounter_id=encounter.encounter_id,
        before=before,
        after={
            "status": "final",
            "final_revision": revision.revision,
            "final_codes": [f"{c.system}:{c.code}" for c in final],
            "rejected": [f"{c.system}:{c.code}" for c in state.negatives()],
        },
        model_version=revision.model_version,
        at=now,
    )
    out = FinalizePublic(
        item_id=item.id,
        encounter_id=encounter.encounter_id,
        revision=revision.revision,
        status="final",
        final_codes=[
            FinalCodePublic(
                system=c.system,
                code=c.code,
                description=c.description,
                evidence=c.evidence,
                source="model" if c.origin == "model" else "coder",
            )
            for c in final
        ],
        finalized_at=now,
    )
    session.commit()
    return out


def release(session: Session, item_id: int, principal: Principal, *, now: datetime) -> ReleasePublic:
    loaded = _load(session, item_id, lock=True)
    _require_lease(loaded, principal, now)
    item = loaded.item
    before = {"lease_holder": item.lease_holder, "lease_expires_at": _iso(item.lease_expires_at)}
    item.lease_holder, item.lease_expires_at = None, None
    audit.record(
        session,
        principal,
        "review.released",
        "review_item",
        item.id,
        encounter_id=loaded.encounter.encounter_id,
        before=before,
        after={"lease_holder": None},
        model_version=loaded.revision.model_version,
        at=now,
    )
    out = ReleasePublic(item_id=item.id, encounter_id=loaded.encounter.encounter_id, released=True)
    session.commit()
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
