"""Eight coders on a real uvicorn server: 50 items, 50 distinct claims, each decision stored once, and an
expired lease gives its item back (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from functools import partial

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from medcode.data.types import Document
from medcode.serving.orm import DecisionRow, FinalCodeRow, ReviewItemRow
from medcode.serving.server import serve_in_thread
from medcode.serving.services.review_checks import rule_tabular
from medcode.serving.ui.annotate import annotate

from .conftest import bearer, new_key
from .fakes import FakeClock, encounter_json, run_at_once

ACCEPT_UNDECIDED = {"accept_undecided": True}
"""Finalize body: keep the codes left without a decision as suggested."""

N_ITEMS = 50
N_CODERS = 8


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    # what a decision's answer needs is built on its first use: the rules' tabular (lru_cache lets concurrent
    # first calls each build it) and the text pipeline of the note's mentions (one build, the other requests
    # wait). Inside eight coders' first decisions that took over a minute on a loaded machine: build it here
    rule_tabular()
    annotate("warm-up", [Document(document_id="d1", type="progress_note", text="Diabetes.")])
    with serve_in_thread(app) as url:
        yield url


def _fill_queue(app: FastAPI, base_url: str, n: int) -> dict[str, str]:
    """Submit n encounters to review; the submitting integration's headers (only it may resubmit them)."""
    headers = bearer(new_key(app, "integration"))
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for i in range(n):
            response = http.post("/v1/encounters", json=encounter_json(f"e{i:03d}", f"Diabetes, visit {i}."))
            assert response.status_code == 201, response.text
    return headers


def test_eight_coders_claim_fifty_items_without_overlap(app: FastAPI, base_url: str) -> None:
    _fill_queue(app, base_url, N_ITEMS)
    coder_keys = [new_key(app, "coder", f"coder {i}") for i in range(N_CODERS)]
    start = threading.Barrier(N_CODERS)
    claimed: list[list[int]] = [[] for _ in range(N_CODERS)]
    errors: list[str] = []

    def claim_and_decide(index: int) -> None:
        with httpx.Client(base_url=base_url, headers=bearer(coder_keys[index]), timeout=120) as http:
            start.wait()
            while True:
                response = http.post("/v1/review/claim")
                if response.status_code == 204:
                    return
                if response.status_code != 200:
                    errors.append(f"claim {response.status_code}: {response.text}")
                    return
                item = response.json()["item_id"]
                claimed[index].append(item)
                decision = {"code": "E11.9", "action": "accept", "decision_id": f"accept-{item}"}
                for _attempt in range(2):  # the retry must store nothing new
                    decided = http.post(f"/v1/review/items/{item}/decisions", json={"decisions": [decision]})
                    if decided.status_code != 200:
                        errors.append(f"decide {decided.status_code}: {decided.text}")
                finalized = http.post(f"/v1/review/items/{item}/finalize", json=ACCEPT_UNDECIDED)
                if finalized.status_code != 200:
                    errors.append(f"finalize {finalized.status_code}: {finalized.text}")

    errors += run_at_once(
        [(f"coder {i}", partial(claim_and_decide, i)) for i in range(N_CODERS)], timeout=300
    )
    assert not errors, errors[:5]
    everything = [item for items in claimed for item in items]
    assert len(everything) == N_ITEMS
    assert len(set(everything)) == N_ITEMS, Counter(everything).most_common(3)
    assert sum(1 for items in claimed if items) > 1  # the work was actually shared
    with app.state.db.sessions() as session:
        per_item = Counter(session.scalars(select(DecisionRow.item_id)).all())
        assert len(per_item) == N_ITEMS and set(per_item.values()) == {1}
        assert session.scalar(select(func.count()).select_from(FinalCodeRow)) == N_ITEMS
        statuses = Counter(session.scalars(select(ReviewItemRow.status)).all())
        assert statuses == {"final": N_ITEMS}


def test_simultaneous_claims_never_share_an_item(app: FastAPI, base_url: str) -> None:
    _fill_queue(app, base_url, N_CODERS)
    coder_keys = [new_key(app, "coder", f"coder {i}") for i in range(N_CODERS * 2)]
    start = threading.Barrier(len(coder_keys))
    results: list[int | None] = [None] * len(coder_keys)

    def claim(index: int) -> None:
        with httpx.Client(base_url=base_url, headers=bearer(coder_keys[index]), timeout=60) as http:
            start.wait()
            response = http.post("/v1/review/claim")
            results[index] = response.json()["item_id"] if response.status_code == 200 else None

    errors = run_at_once([(f"coder {i}", partial(claim, i)) for i in range(len(coder_keys))], timeout=120)
    assert not errors, errors[:5]
    won = [r for r in results if r is not None]
    assert len(won) == N_CODERS and len(set(won)) == N_CODERS  # 8 items, 16 coders: 8 win, 8 get 204


def test_an_expired_lease_returns_its_item(app: FastAPI, base_url: str, clock: FakeClock) -> None:
    _fill_queue(app, base_url, 1)
    first, second = bearer(new_key(app, "coder", "a")), bearer(new_key(app, "coder", "b"))
    with httpx.Client(base_url=base_url, timeout=30) as http:
        item = http.post("/v1/review/claim", headers=first).json()["item_id"]
        assert http.post("/v1/review/claim", headers=second).status_code == 204
        clock.advance(app.state.settings.review_lease_seconds + 1)
        assert http.post("/v1/review/claim", headers=second).json()["item_id"] == item
        late = http.post(f"/v1/review/items/{item}/finalize", headers=first, json=ACCEPT_UNDECIDED)
        assert late.status_code == 409
        finalized = http.post(f"/v1/review/items/{item}/finalize", headers=second, json=ACCEPT_UNDECIDED)
        assert finalized.status_code == 200


def test_resubmissions_racing_finalizations_stay_consistent(app: FastAPI, base_url: str) -> None:
    n = 10
    integration = _fill_queue(app, base_url, n)
    coders = [bearer(new_key(app, "coder", f"coder {i}")) for i in range(n)]
    with httpx.Client(base_url=base_url, timeout=60) as http:
        claims = {}
        for headers in coders:
            claim = http.post("/v1/review/claim", headers=headers).json()
            claims[claim["encounter_id"]] = (claim["item_id"], headers)
    start = threading.Barrier(2 * n)
    finalized: dict[str, int] = {}
    resubmitted: dict[str, int] = {}

    def finalize(encounter_id: str) -> None:
        item, headers = claims[encounter_id]
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            start.wait()
            finalized[encounter_id] = http.post(
                f"/v1/review/items/{item}/finalize", json=ACCEPT_UNDECIDED
            ).status_code

    def resubmit(encounter_id: str) -> None:
        with httpx.Client(base_url=base_url, headers=integration, timeout=60) as http:
            start.wait()
            payload = encounter_json(encounter_id, "Diabetes and asthma, revised.")
            resubmitted[encounter_id] = http.post("/v1/encounters", json=payload).status_code

    calls = [(f"{f.__name__} {e}", partial(f, e)) for e in claims for f in (finalize, resubmit)]
    errors = run_at_once(calls, timeout=120)
    assert not errors, errors[:5]
    assert set(resubmitted.values()) == {201}
    assert set(finalized.values()) <= {200, 409}
    with httpx.Client(base_url=base_url, headers=integration, timeout=60) as http:
        for encounter_id, status in finalized.items():
            state = http.get(f"/v1/encounters/{encounter_id}").json()
            assert state["revision"] == 2 and state["review_pending"] is True
            reasons = state["result"]["routing"]["reasons"]
            # finalized first: the resubmission waits for review; else the finalize was refused as stale
            if status == 200 and state["status"] == "final":
                assert state["final_revision"] == 1 and "resubmitted_after_final" in reasons
            else:
                assert status == 409 and state["status"] == "in_review" and state["final_codes"] == []
