"""The audit log: one event per state change with who, when, what, before/after and the model version."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .conftest import Auth
from .fakes import encounter_json


def _workflow(client: TestClient, as_role: Auth) -> int:
    client.post(
        "/v1/encounters", json=encounter_json("e1", "Diabetes. Asthma."), headers=as_role("integration")
    )
    coder = as_role("coder")
    item = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    client.post(
        f"/v1/review/items/{item}/decisions",
        json={
            "decisions": [
                {"code": "E11.9", "action": "accept"},
                {"code": "J45.909", "action": "reject", "reason": "resolved in childhood"},
            ]
        },
        headers=coder,
    )
    client.post(f"/v1/review/items/{item}/finalize", headers=coder)
    return item


def test_audit_log_records_every_step_of_a_review(
    client: TestClient, as_role: Auth, keys: dict[str, str]
) -> None:
    item = _workflow(client, as_role)
    client.post("/v1/encounters", json=encounter_json("other", "Asthma."), headers=as_role("integration"))
    page = client.get("/v1/audit", params={"encounter_id": "e1"}, headers=as_role("admin")).json()
    events = page["events"]
    assert [e["action"] for e in events] == [
        "encounter.submitted",
        "review.claimed",
        "review.decision.accept",
        "review.decision.reject",
        "review.finalized",
    ]
    assert page["total"] == 5
    submitted, claimed, accepted, rejected, finalized = events

    assert submitted["actor_role"] == "integration" and submitted["actor_name"] == "test integration"
    assert submitted["before"] is None
    assert submitted["after"]["status"] == "in_review"
    assert submitted["after"]["routing"]["reasons"] == ["low_confidence:E11.9", "low_confidence:J45.909"]
    assert submitted["model_version"] == "fake-1"

    coder_id = keys["coder"].split("_")[1]
    assert claimed["actor"] == coder_id and claimed["entity_id"] == str(item)
    assert claimed["before"]["lease_holder"] is None and claimed["after"]["lease_holder"] == coder_id

    assert accepted["before"] == {"system": "ICD-10-CM", "code": "E11.9", "status": "pending"}
    assert accepted["after"]["code_status"]["status"] == "accepted"
    assert rejected["after"]["reason"] == "resolved in childhood"
    assert rejected["after"]["code_status"]["status"] == "rejected"

    assert finalized["before"]["final_codes"] == [] and finalized["before"]["status"] == "in_review"
    assert finalized["after"]["final_codes"] == ["ICD-10-CM:E11.9"]
    assert finalized["after"]["rejected"] == ["ICD-10-CM:J45.909"]
    for event in events:
        assert event["at"] and event["request_id"] and event["model_version"] == "fake-1"
        assert "Diabetes" not in str(event)  # no note text in the audit log


def test_audit_filters_by_action_and_pages(client: TestClient, as_role: Auth) -> None:
    _workflow(client, as_role)
    admin = as_role("admin")
    claims = client.get("/v1/audit?action=review.claimed", headers=admin).json()
    assert [e["action"] for e in claims["events"]] == ["review.claimed"]
    page = client.get("/v1/audit?limit=2&offset=1", headers=admin).json()
    assert len(page["events"]) == 2 and page["total"] >= 5


def test_key_management_is_audited(client: TestClient, as_role: Auth) -> None:
    created = client.post("/v1/admin/keys", json={"role": "scientist"}, headers=as_role("admin")).json()
    client.delete(f"/v1/admin/keys/{created['key_id']}", headers=as_role("admin"))
    events = client.get("/v1/audit", headers=as_role("admin")).json()["events"]
    actions = [(e["action"], e["entity_id"]) for e in events if e["entity_type"] == "api_key"]
    assert ("api_key.created", created["key_id"]) in actions and (
        "api_key.revoked",
        created["key_id"],
    ) in actions
    assert created["key"] not in str(events)


def test_the_audit_log_is_append_only(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    _workflow(client, as_role)
    for statement in ("UPDATE audit_events SET actor = 'someone'", "DELETE FROM audit_events"):
        with app.state.db.sessions() as session, pytest.raises(DBAPIError):
            session.execute(text(statement))
            session.commit()
