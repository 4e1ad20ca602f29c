"""The coder's flow over HTTP: claim a chosen item, renew the lease while working, sequence the codes
(principal first, kept by finalize), and a new revision that carries the decisions that still apply."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import Auth
from .fakes import FakeClock, encounter_json

NOTE = "Type 2 diabetes. Asthma. Hypertension. Stage 3b kidney disease."


@pytest.fixture(scope="module")
def small_pipeline() -> Any:
    from medcode.model.text import build_pipeline

    return build_pipeline(terms=["diabetes", "asthma", "hypertension", "kidney disease"])


@pytest.fixture(autouse=True)
def note_mentions(small_pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("medcode.serving.ui.annotate._load_pipeline", lambda: small_pipeline)


def _submit(client: TestClient, auth: Auth, encounter_id: str, text: str = NOTE) -> dict:
    response = client.post(
        "/v1/encounters",
        params={"route": "review"},
        json=encounter_json(encounter_id, text),
        headers=auth("integration"),
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def _queue(client: TestClient, auth: Auth) -> dict[str, int]:
    items = client.get("/v1/review/queue", headers=auth("coder")).json()["items"]
    return {i["encounter_id"]: i["item_id"] for i in items}


def _decide(client: TestClient, headers: dict[str, str], item_id: int, *decisions: dict) -> Any:
    return client.post(
        f"/v1/review/items/{item_id}/decisions", json={"decisions": list(decisions)}, headers=headers
    )


def test_claim_a_chosen_item_takes_it_and_another_coder_gets_409(client: TestClient, as_role: Auth) -> None:
    _submit(client, as_role, "first")
    _submit(client, as_role, "second")
    chosen = _queue(client, as_role)["second"]
    response = client.post(f"/v1/review/items/{chosen}/claim", headers=as_role("coder"))
    assert response.status_code == 200, response.text
    assert response.json()["encounter_id"] == "second" and response.json()["resumed"] is False
    again = client.post(f"/v1/review/items/{chosen}/claim", headers=as_role("coder"))
    assert again.status_code == 200 and again.json()["resumed"] is True
    other = client.post(f"/v1/review/items/{chosen}/claim", headers=as_role("admin"))
    assert other.status_code == 409 and other.json()["code"] == "lease_held_by_another"
    # the next claim by another reviewer skips the chosen item
    assert client.post("/v1/review/claim", headers=as_role("admin")).json()["encounter_id"] == "first"


def test_lease_renews_while_held_and_not_once_expired(
    client: TestClient, as_role: Auth, clock: FakeClock
) -> None:
    _submit(client, as_role, "e1")
    coder = as_role("coder")
    item_id = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    clock.advance(600)
    renewed = client.post(f"/v1/review/items/{item_id}/lease", headers=coder)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["lease_expires_at"].startswith("2026-11-01T12:25:00")
    assert renewed.json()["lease_seconds"] == 900
    other = client.post(f"/v1/review/items/{item_id}/lease", headers=as_role("admin"))
    assert other.status_code == 409
    clock.advance(901)
    expired = client.post(f"/v1/review/items/{item_id}/lease", headers=coder)
    assert expired.status_code == 409 and expired.json()["code"] == "lease_expired"


def test_sequence_puts_the_principal_first_in_the_final_codes(client: TestClient, as_role: Auth) -> None:
    _submit(client, as_role, "e1")
    coder = as_role("coder")
    item_id = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    codes = [c["code"] for c in client.get(f"/v1/review/items/{item_id}", headers=coder).json()["codes"]]
    assert codes[:2] == ["I10", "E11.9"], "model order: most confident first"
    response = client.put(
        f"/v1/review/items/{item_id}/sequence",
        json={"sequence": ["ICD-10-CM|E11.9", "ICD-10-CM|J45.909", "ICD-10-CM|I10"]},
        headers=coder,
    )
    assert response.status_code == 200, response.text
    assert response.json()["principal"] == "E11.9"
    assert response.json()["sequence"] == ["ICD-10-CM|E119", "ICD-10-CM|J45909", "ICD-10-CM|I10"]
    item = client.get(f"/v1/review/items/{item_id}", headers=coder).json()
    assert item["sequence"] == response.json()["sequence"]
    for code in codes:
        assert _decide(client, coder, item_id, {"code": code, "action": "accept"}).status_code == 200
    final = client.post(f"/v1/review/items/{item_id}/finalize", json={}, headers=coder)
    assert final.status_code == 200, final.text
    assert [c["code"] for c in final.json()["final_codes"]] == ["E11.9", "J45.909", "I10"]
    stored = client.get("/v1/encounters/e1", headers=as_role("integration")).json()["final_codes"]
    assert [c["code"] for c in stored] == ["E11.9", "J45.909", "I10"]
    events = client.get("/v1/audit", params={"encounter_id": "e1"}, headers=as_role("admin")).json()["events"]
    finalized = next(e for e in events if e["action"] == "review.finalized")
    assert finalized["after"]["principal"] == "ICD-10-CM:E11.9"
    assert any(e["action"] == "review.sequenced" for e in events)


def test_sequence_naming_a_code_outside_the_item_is_refused(client: TestClient, as_role: Auth) -> None:
    _submit(client, as_role, "e1")
    coder = as_role("coder")
    item_id = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    bad = client.put(
        f"/v1/review/items/{item_id}/sequence", json={"sequence": ["ICD-10-CM|C50.911"]}, headers=coder
    )
    assert bad.status_code == 422 and "not a code of review item" in bad.json()["detail"]
    twice = client.put(
        f"/v1/review/items/{item_id}/sequence",
        json={"sequence": ["ICD-10-CM|I10", "ICD-10-CM|I10"]},
        headers=coder,
    )
    assert twice.status_code == 422


def test_new_revision_links_the_old_item_and_carries_the_decisions_that_still_apply(
    client: TestClient, as_role: Auth
) -> None:
    _submit(client, as_role, "e1")
    coder = as_role("coder")
    old_id = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    added = "Stage 3b kidney disease"
    start = NOTE.index(added)
    response = _decide(
        client,
        coder,
        old_id,
        {"code": "E11.9", "action": "accept"},
        {"code": "J45.909", "action": "reject", "reason": "Not supported by the documentation"},
        {"code": "I10", "action": "accept"},
        {
            "action": "add",
            "code": "N18.32",
            "evidence": [{"document_id": "d1", "start": start, "end": start + 23}],
        },
    )
    assert response.status_code == 200, response.text
    client.put(
        f"/v1/review/items/{old_id}/sequence",
        json={"sequence": ["ICD-10-CM|E11.9", "ICD-10-CM|N18.32", "ICD-10-CM|I10"]},
        headers=coder,
    )

    # the new revision: hypertension is gone, asthma is still there, the kidney disease line moved
    new_text = "Follow-up. Stage 3b kidney disease. Type 2 diabetes. Asthma."
    _submit(client, as_role, "e1", new_text)
    old = client.get(f"/v1/review/items/{old_id}", headers=coder).json()
    assert old["status"] == "superseded"
    new_id = old["superseded_by"]
    assert new_id is not None and new_id != old_id
    new = client.get(f"/v1/review/items/{new_id}", headers=coder).json()
    status = {c["code"]: c["status"] for c in new["codes"]}
    assert status["E11.9"] == "accepted", "same code, evidence still in the text: carried"
    assert status["J45.909"] == "rejected", "a rejection still applies"
    assert "I10" not in status, "the code is no longer suggested: nothing to carry"
    assert status["N18.32"] == "added"
    n18 = next(c for c in new["codes"] if c["code"] == "N18.32")
    moved = new_text.index(added)
    assert [(e["start"], e["end"]) for e in n18["evidence"]] == [(moved, moved + len(added))]
    assert new["sequence"] == ["ICD-10-CM|E119", "ICD-10-CM|N1832"]
    assert {d["actor"] for d in new["decisions"]} == {old["decisions"][0]["actor"]}
    events = client.get("/v1/audit", params={"encounter_id": "e1"}, headers=as_role("admin")).json()["events"]
    carried = next(e for e in events if e["action"] == "review.decisions.carried")
    assert [d["code"] for d in carried["after"]["dropped"]] == ["I10"]


def test_added_code_whose_evidence_left_the_note_is_not_carried(client: TestClient, as_role: Auth) -> None:
    _submit(client, as_role, "e1")
    coder = as_role("coder")
    old_id = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    start = NOTE.index("Stage 3b kidney disease")
    _decide(
        client,
        coder,
        old_id,
        {
            "action": "add",
            "code": "N18.32",
            "evidence": [{"document_id": "d1", "start": start, "end": start + 23}],
        },
    )
    _submit(client, as_role, "e1", "Type 2 diabetes. Asthma. Hypertension. Kidney function normal.")
    new_id = client.get(f"/v1/review/items/{old_id}", headers=coder).json()["superseded_by"]
    new = client.get(f"/v1/review/items/{new_id}", headers=coder).json()
    assert "N18.32" not in {c["code"] for c in new["codes"]}
    assert new["decisions"] == []


def test_sequenced_lists_diagnoses_in_the_coders_order_then_procedures() -> None:
    from medcode.serving.services.review_state import CodeState, sequenced

    def code(system: str, value: str) -> CodeState:
        return CodeState(system, value, "", None, [], "model")

    codes = [code("ICD-10-PCS", "0DTJ4ZZ"), code("ICD-10-CM", "I10"), code("ICD-10-CM", "E11.9")]
    codes.append(code("ICD-10-CM", "J45.909"))
    assert [c.code for c in sequenced(codes, None)] == ["I10", "E11.9", "J45.909", "0DTJ4ZZ"]
    order = sequenced(codes, ["ICD-10-CM|E119", "ICD-10-PCS|0DTJ4ZZ", "ICD-10-CM|I10"])
    assert [c.code for c in order] == ["E11.9", "I10", "J45.909", "0DTJ4ZZ"], "unnamed codes follow"
