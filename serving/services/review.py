"""The review queue: list, claim with a lease, decide per code, finalize, release.

Claiming is atomic on SQLite and PostgreSQL alike: candidates are read (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, under SQLite's `BEGIN IMMEDIATE` write lock there), then taken with a conditional
`UPDATE ... WHERE status = 'open' AND (lease_holder IS NULL OR lease_expires_at <= now)` whose row count
must be one. An expired lease is as good as none: the item goes back to the queue. A coder who already
holds a live lease gets that item again (a retried claim never strands an item).

Decisions, finalize and release lock the item row and answer 409 when the caller does not hold a live
lease, when the item is final or superseded, or when a decision does not fit the item's codes. Each
decision is stored once: a client `decision_id` (or an `Idempotency-Key` header, which names the
decisions of one request) makes a retried request a replay that stores nothing. A decision that sends
back the code's `rev` (finalize: the item's `version`) it saw answers 409 when another tab or coder
changed it meanwhile.

Every answer carries the live problems of the kept code set (`review_checks`); finalize refuses (409
`finalize_blocked`, each problem listed) while one is neither fixed nor overridden with a reason, and the
audit keeps the overrides and any undecided codes the coder accepted as a whole.
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
from medcode.serving.db import page
from medcode.serving.errors import Conflict, InvalidRequest, NotFound
from medcode.serving.orm import DecisionRow, EncounterRow, FinalCodeRow, ReviewItemRow, RevisionRow
from medcode.serving.schemas.encounters import FinalCodePublic
from medcode.serving.schemas.review import (
    CandidatePublic,
    ClaimPublic,
    DecisionCreate,
    DecisionPublic,
    DecisionsResultPublic,
    FinalizeCreate,
    FinalizePublic,
    ItemCodePublic,
    OverriddenProblemPublic,
    ProblemPublic,
    QueueItemPublic,
    QueuePublic,
    ReleasePublic,
    ReviewItemPublic,
)
from medcode.serving.services import audit
from medcode.serving.services.codes import billable, lookup_code, normalize_key
from medcode.serving.services.encounters import final_codes_of
from medcode.serving.services.review_checks import (
    MentionSource,
    Problem,
    check_codes,
    note_mentions,
    problems_by_code,
)
from medcode.serving.services.review_state import (
    DIAGNOSIS_SYSTEMS,
    CodeState,
    DecisionConflict,
    ItemState,
    StoredDecision,
    decision_fields,
    decision_rows,
    sequenced,
    stored_decision,
)

CLAIM_CANDIDATES = 1
"""Rows locked per attempt: one, so concurrent claimers skip each other's row rather than all of them."""
LIVE_WARNING_KINDS = ("excludes1", "age_sex")
"""Model warnings the live checks recompute: the suggestion-time ones may name codes no longer kept."""


class FinalizeBlocked(Conflict):
    """Finalize refused: the live code set has problems that are neither fixed nor overridden."""

    code = "finalize_blocked"

    def __init__(self, problems: Sequence[Problem]) -> None:
        listed = "; ".join(p.message for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(f"cannot finalize: {count}: {listed}")
        self.problems = [problem_public(p) for p in problems]


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
    total, rows = page(session, query, ReviewItemRow.priority, ReviewItemRow.id, limit=limit, offset=offset)
    items = []
    for item, encounter_id, revision in rows:
        held = _lease_live(item, now)
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
    """SQL: nobody holds the item's lease now (the negation of `_lease_live`)."""
    return or_(ReviewItemRow.lease_holder.is_(None), ReviewItemRow.lease_expires_at <= now)


def _lease_live(item: ReviewItemRow, now: datetime) -> bool:
    """Someone holds the item's lease now."""
    return item.lease_holder is not None and item.lease_expires_at is not None and item.lease_expires_at > now


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
        claim = _claimed(_load(session, held.id), expires, resumed=True)
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
            loaded = _take_lease(session, item, principal, now=now, expires=expires)
            if loaded is None:
                continue
            claim = _claimed(loaded, expires, resumed=False)
            session.commit()
            return claim
        session.commit()  # every candidate was taken meanwhile: look again


def _take_lease(
    session: Session,
    item: ReviewItemRow,
    principal: Principal,
    *,
    now: datetime,
    expires: datetime,
    chosen: bool = False,
) -> _Loaded | None:
    """Lease the open item to `principal` with one conditional UPDATE (it must still be free) and audit the
    claim; None when another coder took it first. `chosen`: the coder picked it in the queue."""
    previous = {"lease_holder": item.lease_holder, "lease_expires_at": _iso(item.lease_expires_at)}
    taken = session.execute(
        update(ReviewItemRow)
        .where(ReviewItemRow.id == item.id, ReviewItemRow.status == "open", _free(now))
        .values(lease_holder=principal.key_id, lease_expires_at=expires, claims=ReviewItemRow.claims + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(item)
    loaded = _load(session, item.id)
    after: dict[str, Any] = {"lease_holder": principal.key_id, "lease_expires_at": _iso(expires)}
    if chosen:
        after["chosen"] = True
    audit.record(
        session,
        principal,
        "review.claimed",
        "review_item",
        item.id,
        encounter_id=loaded.encounter.encounter_id,
        before=previous,
        after=after,
        model_version=loaded.revision.model_version,
        at=now,
    )
    return loaded


def _claimed(loaded: _Loaded, expires: datetime, *, resumed: bool) -> ClaimPublic:
    return ClaimPublic(
        item_id=loaded.item.id,
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


def item_state(result: Result, rows: Sequence[DecisionRow]) -> ItemState:
    """Replay an item's stored decisions over its result (titles of added codes looked up again)."""
    titles: dict[str, str] = {}
    for row in rows:
        if row.action in ("add", "replace"):
            code = row.replacement if row.action == "replace" else row.code
            system = row.replacement_system if row.action == "replace" else row.system
            ref = lookup_code(code or "", system)
            titles[code or ""] = ref.title if ref else ""
    return ItemState.replay(result, [stored_decision(row, titles) for row in rows])


def problem_public(problem: Problem) -> ProblemPublic:
    return ProblemPublic(
        key=problem.key,
        kind=problem.kind,
        codes=list(problem.codes),
        message=problem.message,
        overridable=problem.overridable,
    )


def _code_public(state: CodeState, problems: dict[str, list[Problem]] | None = None) -> ItemCodePublic:
    live = (problems or {}).get(normalize_key(state.code), []) if state.kept else []
    return ItemCodePublic(
        system=state.system,
        code=state.code,
        description=state.description,
        confidence=state.confidence,
        evidence=state.evidence,
        rationale=state.rationale,
        warnings=[w for w in state.warnings if w.split(":", 1)[0] not in LIVE_WARNING_KINDS],
        origin=state.origin,
        status=state.status,  # type: ignore[arg-type]
        reason=state.reason,
        replaced_by=state.replaced_by,
        billable=billable(state.code, state.system),
        problems=[problem_public(p) for p in live],
        rev=state.rev,
    )


def _codes_public(state: ItemState, problems: Sequence[Problem]) -> list[ItemCodePublic]:
    by_code = problems_by_code(problems)
    return [_code_public(s, by_code) for s in state.codes]


def _candidates_public(result: Result, state: ItemState) -> list[CandidatePublic]:
    return [
        CandidatePublic(
            system=c.system,
            code=c.code,
            description=c.description,
            confidence=c.confidence,
            evidence=c.evidence,
            billable=billable(c.code, c.system),
        )
        for c in result.candidates
        if state.find(c.code, c.system) is None
    ]


def _decision_public(row: DecisionRow) -> DecisionPublic:
    return DecisionPublic.model_validate(row, from_attributes=True)


def get_item(
    session: Session, item_id: int, *, mentions_of: MentionSource = note_mentions
) -> ReviewItemPublic:
    loaded = _load(session, item_id)
    rows = decision_rows(session, item_id)
    state = item_state(loaded.result, rows)
    note = loaded.note
    item = loaded.item
    problems = check_codes(state.codes, note, mentions_of(note)) if item.status == "open" else []
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
        codes=_codes_public(state, problems),
        decisions=[_decision_public(r) for r in rows],
        created_at=item.created_at,
        finalized_at=item.finalized_at,
        finalized_by=item.finalized_by,
        version=len(rows),
        problems=[problem_public(p) for p in problems],
        candidates=_candidates_public(loaded.result, state),
        sequence=list(item.sequence) if item.sequence else None,
        superseded_by=item.superseded_by,
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
        if _lease_live(item, now):
            raise Conflict(f"review item {item.id} is held by another coder", code="lease_held_by_another")
        raise Conflict(
            f"you do not hold a lease on review item {item.id}; claim it first", code="lease_not_held"
        )
    if item.lease_expires_at is None or item.lease_expires_at <= now:
        raise Conflict(f"your lease on review item {item.id} has expired; claim again", code="lease_expired")


def _load_leased(session: Session, item_id: int, principal: Principal, now: datetime) -> _Loaded:
    """The item, row-locked, for a change by the coder who holds its live lease; on a 409 the transaction
    is rolled back first, so that the locks do not outlive the refusal."""
    loaded = _load(session, item_id, lock=True)
    try:
        _require_lease(loaded, principal, now)
    except Conflict:
        session.rollback()
        raise
    return loaded


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
    return stored, decision_fields(stored)


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
    mentions_of: MentionSource = note_mentions,
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
        rows = decision_rows(session, item_id)
        state = item_state(loaded.result, rows)
        lease_expires_at, open_, note = (
            loaded.item.lease_expires_at,
            loaded.item.status == "open",
            loaded.note,
        )
        session.rollback()
        return _decisions_result(
            item_id, [], replayed, state, note, lease_expires_at, len(rows), open_, mentions_of
        )

    _require_lease(loaded, principal, now)
    state = item_state(loaded.result, decision_rows(session, item_id))
    note = loaded.note
    new_rows = []
    for decision_id, decision in fresh:
        before = _code_snapshot(state, decision.code)
        _check_fresh(state, decision)
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
    stored_public = [_decision_public(r) for r in new_rows]
    lease_expires_at = loaded.item.lease_expires_at
    version = session.scalar(
        select(func.count()).select_from(DecisionRow).where(DecisionRow.item_id == item_id)
    )
    session.commit()
    return _decisions_result(
        item_id, stored_public, replayed, state, note, lease_expires_at, version or 0, True, mentions_of
    )


def _decisions_result(
    item_id: int,
    stored: list[DecisionPublic],
    replayed: list[DecisionPublic],
    state: ItemState,
    note: Encounter,
    lease_expires_at: datetime | None,
    version: int,
    open_: bool,
    mentions_of: MentionSource,
) -> DecisionsResultPublic:
    """The answer to a decisions request, with the live problems (computed outside any transaction)."""
    problems = check_codes(state.codes, note, mentions_of(note)) if open_ else []
    return DecisionsResultPublic(
        item_id=item_id,
        stored=stored,
        replayed=replayed,
        codes=_codes_public(state, problems),
        lease_expires_at=lease_expires_at,
        version=version,
        problems=[problem_public(p) for p in problems],
    )


def _check_fresh(state: ItemState, decision: DecisionCreate) -> None:
    """409 when the client saw another revision of the code than the one stored now."""
    if decision.expected_rev is None or decision.action == "add":
        return
    current = state.find(decision.code, decision.system)
    if current is None or current.rev == decision.expected_rev:
        return
    who = " by another coder" if current.decided_by else ""
    raise Conflict(
        f"{current.code} changed since this page loaded (now {current.status}{who}); reload the item "
        "and decide again",
        code="stale_code",
    )


def _code_snapshot(state: ItemState, code: str) -> dict[str, Any] | None:
    current = state.find(code)
    if current is None:
        return None
    return {"system": current.system, "code": current.code, "status": current.status}


def _resolve_problems(
    problems: Sequence[Problem], request: FinalizeCreate
) -> tuple[list[OverriddenProblemPublic], list[Problem]]:
    """(overridden problems with their reasons, problems still blocking)."""
    named = {o.problem: o.reason.strip() for o in request.overrides if o.problem}
    known = {p.key for p in problems}
    unknown = sorted(set(named) - known)
    if unknown:
        raise InvalidRequest(f"overrides name problems the item does not have: {', '.join(unknown)}")
    overridden: list[OverriddenProblemPublic] = []
    blocking: list[Problem] = []
    for problem in problems:
        reason = named.get(problem.key) or (request.override.reason.strip() if request.override else None)
        if reason and problem.overridable:
            overridden.append(OverriddenProblemPublic(**problem_public(problem).model_dump(), reason=reason))
        else:
            blocking.append(problem)
    return overridden, blocking


def finalize(
    session: Session,
    item_id: int,
    principal: Principal,
    *,
    now: datetime,
    request: FinalizeCreate | None = None,
    mentions_of: MentionSource = note_mentions,
) -> FinalizePublic:
    request = request or FinalizeCreate()
    note = _load(session, item_id).note
    session.rollback()
    mentions = mentions_of(note)  # the text pipeline runs before the row locks are taken
    loaded = _load_leased(session, item_id, principal, now)
    rows = decision_rows(session, item_id)
    if request.expected_version is not None and request.expected_version != len(rows):
        raise Conflict(
            f"review item {item_id} changed since this page loaded ({len(rows)} decisions, you saw "
            f"{request.expected_version}); reload it before finalizing",
            code="stale_item",
        )
    state = item_state(loaded.result, rows)
    problems = check_codes(state.codes, note, mentions, accept_undecided=request.accept_undecided)
    overridden, blocking = _resolve_problems(problems, request)
    if blocking:
        session.rollback()
        raise FinalizeBlocked(blocking)
    accepted_undecided = [c.code for c in state.codes if c.status == "pending"]
    encounter, item, revision = loaded.encounter, loaded.item, loaded.revision
    before = {
        "status": encounter.status,
        "final_revision": encounter.final_revision,
        "final_codes": [f"{c.system}:{c.code}" for c in final_codes_of(session, encounter)],
    }
    final = sequenced(state.final_codes(), item.sequence)
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
            "accepted_undecided": [f"{c.system}:{c.code}" for c in state.codes if c.status == "pending"],
            "overrides": [o.model_dump(mode="json") for o in overridden],
            "principal": next((f"{c.system}:{c.code}" for c in final if c.system in DIAGNOSIS_SYSTEMS), None),
            "sequenced_by_coder": bool(item.sequence),
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
        overridden=overridden,
        accepted_undecided=accepted_undecided,
    )
    session.commit()
    return out


def release(session: Session, item_id: int, principal: Principal, *, now: datetime) -> ReleasePublic:
    loaded = _load_leased(session, item_id, principal, now)
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
