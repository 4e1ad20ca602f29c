"""Sequencing takes the item's version like finalize does: a stale tab's reorder is answered 409
`stale_item` and changes nothing; the current version (or none, for API callers) is accepted."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import Auth
from .fakes import encounter_json

NOTE = "Type 2 diabetes. Asthma. Hypertension."


def test_a_sequence_from_a_stale_page_is_refused_with_409(client: TestClient, as_role: Auth) -> None:
    submitted = client.post(
        "/v1/encounters",
        params={"route": "review"},
        json=encounter_json("e1", NOTE),
        headers=as_role("integration"),
    )
    assert submitted.status_code in (200, 201), submitted.text
    coder = as_role("coder")
    item_id = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    seen = client.get(f"/v1/review/items/{item_id}", headers=coder).json()  # the first tab loads the item
    assert seen["version"] == 0 and seen["sequence"] is None
    first, second = (f"{c['system']}|{c['code']}" for c in seen["codes"][:2])
    decided = client.post(  # meanwhile a second tab rejects the first code
        f"/v1/review/items/{item_id}/decisions",
        json={
            "decisions": [{"code": seen["codes"][0]["code"], "action": "reject", "reason": "not documented"}]
        },
        headers=coder,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["version"] == 1

    stale = client.put(
        f"/v1/review/items/{item_id}/sequence",
        json={"sequence": [second, first], "expected_version": seen["version"]},
        headers=coder,
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["code"] == "stale_item" and "changed since this page loaded" in stale.json()["detail"]
    assert client.get(f"/v1/review/items/{item_id}", headers=coder).json()["sequence"] is None
    events = client.get("/v1/audit", params={"encounter_id": "e1"}, headers=as_role("admin")).json()["events"]
    assert not any(e["action"] == "review.sequenced" for e in events)

    current = client.put(
        f"/v1/review/items/{item_id}/sequence",
        json={"sequence": [second, first], "expected_version": 1},
        headers=coder,
    )
    assert current.status_code == 200, current.text
    unversioned = client.put(
        f"/v1/review/items/{item_id}/sequence", json={"sequence": [first]}, headers=coder
    )
    assert unversioned.status_code == 200, unversioned.text
    negative = client.put(
        f"/v1/review/items/{item_id}/sequence",
        json={"sequence": [first], "expected_version": -1},
        headers=coder,
    )
    assert negative.status_code == 422
