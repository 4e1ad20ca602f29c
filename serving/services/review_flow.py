"""The coder's flow through one item: claim a chosen item, keep the lease while working, sequence codes.

- `claim_item` leases the item a coder picked in the queue (409 when another coder holds it, or it is no
  longer open); claiming an item one already holds renews the lease.
- `renew_lease` extends the caller's live lease (the UI calls it, throttled, while the coder presses keys
  or clicks); an expired lease is not renewed: the coder claims again.
- `set_sequence` stores the coder's order of the codes (principal diagnosis first); finalize records the
  final codes in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from medcode.serving.auth import Principal
from medcode.serving.errors import Conflict, InvalidRequest
from medcode.serving.schemas.review import ClaimPublic, LeasePublic, SequencePublic
from medcode.serving.services import audit
from medcode.serving.services.review import (
    _claimed,
    _lease_live,
    _load,
    _load_leased,
    _take_lease,
    item_state,
)
from medcode.serving.services.review_state import decision_rows, sequence_key, sequenced


def claim_item(
    session: Session, item_id: int, principal: Principal, *, now: datetime, lease_seconds: float
) -> ClaimPublic:
    """Lease the chosen item to `principal` (renewed when the caller already holds it)."""
    loaded = _load(session, item_id, lock=True)
    item = loaded.item
    expires = now + timedelta(seconds=lease_seconds)
    if item.status != "open":
        session.rollback()
        raise Conflict(f"review item {item_id} is {item.status}; it cannot be claimed", code="item_not_open")
    if item.lease_holder == principal.key_id and _lease_live(item, now):
        item.lease_expires_at = expires
        out = _claimed(loaded, expires, resumed=True)
        session.commit()
        return out
    taken = _take_lease(session, item, principal, now=now, expires=expires, chosen=True)
    if taken is None:
        session.rollback()
        raise Conflict(f"review item {item_id} is held by another coder", code="lease_held_by_another")
    out = _claimed(taken, expires, resumed=False)
    session.commit()
    return out


def renew_lease(
    session: Session, item_id: int, principal: Principal, *, now: datetime, lease_seconds: float
) -> LeasePublic:
    """Extend the caller's live lease by `lease_seconds` from now (409 when it is not held or has expired)."""
    loaded = _load_leased(session, item_id, principal, now)
    expires = now + timedelta(seconds=lease_seconds)
    loaded.item.lease_expires_at = expires
    session.commit()
    return LeasePublic(item_id=item_id, lease_expires_at=expires, lease_seconds=lease_seconds)


def set_sequence(
    session: Session,
    item_id: int,
    principal: Principal,
    keys: Sequence[str],
    *,
    now: datetime,
    lease_seconds: float,
    expected_version: int | None = None,
) -> SequencePublic:
    """Store the coder's order of the item's codes ("SYSTEM|CODE" keys); each key names a code of the item,
    once. Renews the lease; the audit keeps the order before and after. `expected_version` (the item's
    decision count as the page saw it, as finalize takes it): 409 `stale_item` when it has moved since."""
    loaded = _load_leased(session, item_id, principal, now)
    rows = decision_rows(session, item_id)
    if expected_version is not None and expected_version != len(rows):
        session.rollback()
        raise Conflict(
            f"review item {item_id} changed since this page loaded ({len(rows)} decisions, you saw "
            f"{expected_version}); reload it before sequencing",
            code="stale_item",
        )
    state = item_state(loaded.result, rows)
    canonical: list[str] = []
    for key in keys:
        system, sep, code = key.partition("|")
        current = state.find(code, system) if sep else None
        if current is None:
            session.rollback()
            raise InvalidRequest(f"sequence names {key!r}, which is not a code of review item {item_id}")
        canonical.append(sequence_key(current.system, current.code))
    if len(set(canonical)) != len(canonical):
        session.rollback()
        raise InvalidRequest("sequence names a code more than once")
    item = loaded.item
    before = list(item.sequence) if item.sequence else None
    item.sequence = canonical
    expires = now + timedelta(seconds=lease_seconds)
    item.lease_expires_at = expires
    ordered = sequenced(state.final_codes(), canonical)
    principal_code = next((c.code for c in ordered if c.system == "ICD-10-CM"), None)
    audit.record(
        session,
        principal,
        "review.sequenced",
        "review_item",
        item_id,
        encounter_id=loaded.encounter.encounter_id,
        before={"sequence": before},
        after={"sequence": canonical, "principal": principal_code},
        model_version=loaded.revision.model_version,
        at=now,
    )
    session.commit()
    return SequencePublic(
        item_id=item_id, sequence=canonical, principal=principal_code, lease_expires_at=expires
    )
