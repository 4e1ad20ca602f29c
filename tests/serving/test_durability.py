"""kill -9 of a real server while coders work (SQLite and PostgreSQL): after a restart every acknowledged
decision and finalization is there, nothing is finalized twice, and the leases the dead server's coders
held come back to the queue once they expire."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from medcode.serving.auth import SYSTEM_PRINCIPAL
from medcode.serving.db import Database
from medcode.serving.orm import AuditEventRow, DecisionRow, EncounterRow, FinalCodeRow, ReviewItemRow
from medcode.serving.services import keys as key_service

from .child_server import ChildServer
from .conftest import bearer
from .fakes import encounter_json

N_ENCOUNTERS = 40
N_CODERS = 6
LEASE_SECONDS = 5
KILL_AFTER_FINALIZED = 12
ACCEPT_UNDECIDED = {"accept_undecided": True}


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    database = Database.connect(db_url)  # migrated here, before any server starts
    yield database
    database.dispose()


def _keys(database: Database, role: str, n: int) -> list[str]:
    with database.sessions() as session:
        return [key_service.create(session, SYSTEM_PRINCIPAL, role, f"{role} {i}").key for i in range(n)]


class Coders:
    """Coder threads that claim, decide and finalize until told to stop or the server dies; what the server
    acknowledged (answered 200) is recorded. A 409 (the lease ran out before the coder finished, which a
    loaded machine and a short lease make happen) is no acknowledgement: the coder claims again."""

    def __init__(self, url: str, keys: list[str]) -> None:
        self.url, self.keys = url, keys
        self.decided: set[tuple[int, str]] = set()  # (item, decision_id)
        self.finalized: set[int] = set()
        self.claimed: dict[int, str] = {}  # item -> encounter, every claim the server granted
        self.first_claimed_at: dict[int, datetime] = {}  # item -> when the server's grant reached the coder
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(key,), daemon=True) for key in keys]

    def mid_review(self, finalized_at_least: int) -> bool:
        """Enough finalized, and at least two acknowledged claims not yet finalized (held under a lease)."""
        with self._lock:
            open_claims = set(self.claimed) - self.finalized
            return len(self.finalized) >= finalized_at_least and len(open_claims) >= 2

    def start(self) -> Coders:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "a coder thread hung"

    def _work(self, key: str) -> None:
        with httpx.Client(base_url=self.url, headers=bearer(key), timeout=30) as http:
            try:
                while not self.stop.is_set():
                    claim = http.post("/v1/review/claim")
                    if claim.status_code == 204:
                        time.sleep(0.1)
                        continue
                    if claim.status_code != 200:
                        self.errors.append(f"claim {claim.status_code}: {claim.text}")
                        return
                    item, encounter = claim.json()["item_id"], claim.json()["encounter_id"]
                    with self._lock:
                        self.claimed[item] = encounter
                        self.first_claimed_at.setdefault(item, datetime.now(UTC))
                    decision_id = f"accept-{item}-{key[-6:]}"
                    decision = {"code": "E11.9", "action": "accept", "decision_id": decision_id}
                    decided = http.post(f"/v1/review/items/{item}/decisions", json={"decisions": [decision]})
                    if decided.status_code == 409:  # the lease ran out (a slow machine): claim again
                        continue
                    if decided.status_code != 200:
                        self.errors.append(f"decide {decided.status_code}: {decided.text}")
                        return
                    with self._lock:
                        self.decided.add((item, decision_id))
                    finalized = http.post(f"/v1/review/items/{item}/finalize", json=ACCEPT_UNDECIDED)
                    if finalized.status_code == 409:
                        continue
                    if finalized.status_code != 200:
                        self.errors.append(f"finalize {finalized.status_code}: {finalized.text}")
                        return
                    with self._lock:
                        self.finalized.add(item)
            except httpx.TransportError:
                return  # the server is gone: whatever it did not answer was never acknowledged


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_server_keeps_every_acknowledged_decision(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    home = Path(os.environ.get("MEDCODE_HOME") or tmp_path / "home")  # one text-lexicon cache for all starts
    integration = bearer(_keys(database, "integration", 1)[0])
    server = ChildServer.start(db_url, home, lease_seconds=LEASE_SECONDS)
    try:
        with httpx.Client(base_url=server.url, headers=integration, timeout=30) as http:
            for i in range(N_ENCOUNTERS):
                submitted = http.post(
                    "/v1/encounters", json=encounter_json(f"e{i:03d}", f"Diabetes, visit {i}.")
                )
                assert submitted.status_code == 201, submitted.text
        before = Coders(server.url, _keys(database, "coder", N_CODERS)).start()
        deadline = time.monotonic() + 120
        while (
            not before.mid_review(KILL_AFTER_FINALIZED) and time.monotonic() < deadline and not before.errors
        ):
            time.sleep(0.01)
        server.kill()  # mid-work: coders are between claims, decisions and finalizations
        before.stop.set()
        before.join(timeout=60)
    finally:
        server.kill()
    assert not before.errors, before.errors[:5]
    assert len(before.finalized) >= KILL_AFTER_FINALIZED

    with database.sessions() as session:
        stored = {(d.item_id, d.decision_id) for d in session.scalars(select(DecisionRow))}
        final_items = {
            i.id for i in session.scalars(select(ReviewItemRow).where(ReviewItemRow.status == "final"))
        }
    assert before.decided <= stored, "an acknowledged decision was lost"
    assert before.finalized <= final_items, "an acknowledged finalization was lost"
    held = set(before.claimed) - final_items  # claimed under the dead server, never finalized: leased
    assert held, "the kill should catch some items mid-review"
    with database.sessions() as session:
        rows = session.scalars(select(ReviewItemRow).where(ReviewItemRow.id.in_(held)))
        lease_ends = {row.id: row.lease_expires_at for row in rows}

    server = ChildServer.start(db_url, home, lease_seconds=LEASE_SECONDS)
    try:
        after = Coders(server.url, _keys(database, "coder", N_CODERS)).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not after.errors:
            with database.sessions() as session:
                open_items = session.scalars(
                    select(ReviewItemRow.id).where(ReviewItemRow.status != "final")
                ).all()
            if not open_items:
                break
            time.sleep(0.2)
        after.stop.set()
        after.join(timeout=60)
    finally:
        server.kill()
    assert not after.errors, after.errors[:5]
    assert held <= after.finalized, "a lease of the dead server never came back to the queue"
    early = [
        item for item in held if (end := lease_ends[item]) is not None and after.first_claimed_at[item] < end
    ]
    assert not early, f"held items handed out again before their lease expired: {early}"

    with database.sessions() as session:
        assert Counter(session.scalars(select(EncounterRow.status))) == {"final": N_ENCOUNTERS}
        finalized_events = Counter(
            session.scalars(
                select(AuditEventRow.encounter_id).where(AuditEventRow.action == "review.finalized")
            )
        )
        final_codes = Counter(session.scalars(select(FinalCodeRow.encounter_pk)))
    assert set(finalized_events.values()) == {1} and len(finalized_events) == N_ENCOUNTERS, "finalized twice"
    assert set(final_codes.values()) == {1} and len(final_codes) == N_ENCOUNTERS
    assert not before.finalized & after.finalized
