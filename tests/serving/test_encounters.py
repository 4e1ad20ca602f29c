"""Encounters: suggest, store + route, read back, list, resubmission (SQLite and PostgreSQL)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medcode.serving.orm import EncounterRow, RevisionRow

from .conftest import Auth
from .fakes import FakeClock, encounter_json


def _count(app: FastAPI, model: type) -> int:
    with app.state.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_suggest_returns_result_and_stores_nothing(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    response = client.post(
        "/v1/suggest", json=encounter_json("e1", "History of hypertension."), headers=as_role("integration")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["encounter_id"] == "e1"
    assert [c["code"] for c in body["codes"]] == ["I10"]
    assert body["codes"][0]["evidence"][0] == {
        "document_id": "d1",
        "start": 11,
        "end": 23,
        "text": "hypertension",
    }
    assert body["model_version"] == "fake-1" and body["code_set_version"] == "ICD-10-CM 2026"
    assert _count(app, EncounterRow) == 0


def test_submit_auto_accepts_a_confident_encounter(client: TestClient, as_role: Auth) -> None:
    response = client.post(
        "/v1/encounters", json=encounter_json("e1", "Hypertension, stable."), headers=as_role("integration")
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "auto_accepted"
    assert body["revision"] == 1 and body["final_revision"] == 1
    assert body["result"]["routing"] == {"decision": "auto_accept", "reasons": []}
    assert [(c["code"], c["source"]) for c in body["final_codes"]] == [("I10", "auto")]
    assert body["review_pending"] is False
    fetched = client.get("/v1/encounters/e1", headers=as_role("integration")).json()
    assert fetched["status"] == "auto_accepted"
    assert fetched["final_codes"] == body["final_codes"]


def test_submit_routes_low_confidence_to_review(client: TestClient, as_role: Auth) -> None:
    body = client.post(
        "/v1/encounters", json=encounter_json("e1", "Type 2 diabetes."), headers=as_role("integration")
    ).json()
    assert body["status"] == "in_review"
    assert body["result"]["routing"] == {"decision": "review", "reasons": ["low_confidence:E11.9"]}
    assert body["final_codes"] == [] and body["review_pending"] is True
    queue = client.get("/v1/review/queue", headers=as_role("coder")).json()
    assert [i["encounter_id"] for i in queue["items"]] == ["e1"]
    assert queue["items"][0]["reasons"] == ["low_confidence:E11.9"]


def test_route_review_forces_review_of_a_confident_encounter(client: TestClient, as_role: Auth) -> None:
    body = client.post(
        "/v1/encounters?route=review",
        json=encounter_json("e1", "Hypertension."),
        headers=as_role("integration"),
    ).json()
    assert body["status"] == "in_review"
    assert body["result"]["routing"]["decision"] == "review"
    assert "forced_review" in body["result"]["routing"]["reasons"]


def test_get_unknown_encounter_returns_404(client: TestClient, as_role: Auth) -> None:
    response = client.get("/v1/encounters/nope", headers=as_role("integration"))
    assert response.status_code == 404
    assert response.json()["code"] == "encounter_not_found"


def test_list_encounters_filters_by_status_and_pages(
    client: TestClient, as_role: Auth, clock: FakeClock
) -> None:
    auth = as_role("integration")
    client.post("/v1/encounters", json=encounter_json("a", "Hypertension."), headers=auth)
    clock.advance(60)
    since = clock.now.isoformat()
    client.post("/v1/encounters", json=encounter_json("b", "Diabetes."), headers=auth)
    clock.advance(60)
    client.post("/v1/encounters", json=encounter_json("c", "Asthma."), headers=auth)

    everything = client.get("/v1/encounters", headers=as_role("scientist")).json()
    assert everything["total"] == 3
    assert [i["encounter_id"] for i in everything["items"]] == ["c", "b", "a"]
    in_review = client.get("/v1/encounters?status=in_review", headers=auth).json()
    assert {i["encounter_id"] for i in in_review["items"]} == {"b", "c"}
    recent = client.get("/v1/encounters", params={"since": since}, headers=auth).json()
    assert {i["encounter_id"] for i in recent["items"]} == {"b", "c"}
    page = client.get("/v1/encounters?limit=1&offset=1", headers=auth).json()
    assert [i["encounter_id"] for i in page["items"]] == ["b"] and page["total"] == 3
    assert client.get("/v1/encounters?status=bogus", headers=auth).status_code == 422


def test_resending_the_same_content_stores_nothing_new(
    client: TestClient, app: FastAPI, as_role: Auth
) -> None:
    auth = as_role("integration")
    first = client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=auth)
    again = client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=auth)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["revision"] == 1
    assert _count(app, RevisionRow) == 1


def test_resubmission_creates_a_revision_and_supersedes_the_open_review(
    client: TestClient, as_role: Auth
) -> None:
    auth, coder = as_role("integration"), as_role("coder")
    client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=auth)
    claim = client.post("/v1/review/claim", headers=coder).json()

    second = client.post(
        "/v1/encounters", json=encounter_json("e1", "Diabetes and asthma."), headers=auth
    ).json()
    assert second["revision"] == 2 and second["status"] == "in_review"
    assert second["review_item_id"] != claim["item_id"]

    stale = client.post(
        f"/v1/review/items/{claim['item_id']}/decisions",
        json={"decisions": [{"code": "E11.9", "action": "accept"}]},
        headers=coder,
    )
    assert stale.status_code == 409 and stale.json()["code"] == "item_superseded"
    queue = client.get("/v1/review/queue", headers=coder).json()
    assert [i["item_id"] for i in queue["items"]] == [second["review_item_id"]]


def _finalize_next(client: TestClient, coder: dict[str, str], decisions: list[dict[str, object]]) -> dict:
    claim = client.post("/v1/review/claim", headers=coder).json()
    if decisions:
        response = client.post(
            f"/v1/review/items/{claim['item_id']}/decisions", json={"decisions": decisions}, headers=coder
        )
        assert response.status_code == 200, response.text
    response = client.post(
        f"/v1/review/items/{claim['item_id']}/finalize", headers=coder, json={"accept_undecided": True}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_resubmission_after_final_keeps_the_coders_codes_until_reviewed(
    client: TestClient, as_role: Auth
) -> None:
    auth, coder = as_role("integration"), as_role("coder")
    client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=auth)
    _finalize_next(client, coder, [{"code": "E11.9", "action": "replace", "replacement": "E11.65"}])

    resubmitted = client.post(
        "/v1/encounters", json=encounter_json("e1", "Diabetes. Hypertension."), headers=auth
    ).json()
    assert resubmitted["status"] == "final"
    assert resubmitted["revision"] == 2 and resubmitted["final_revision"] == 1
    assert [c["code"] for c in resubmitted["final_codes"]] == ["E11.65"]
    assert "resubmitted_after_final" in resubmitted["result"]["routing"]["reasons"]
    assert resubmitted["result"]["routing"]["decision"] == "review"
    assert resubmitted["review_pending"] is True

    _finalize_next(client, coder, [])
    after = client.get("/v1/encounters/e1", headers=auth).json()
    assert after["status"] == "final" and after["final_revision"] == 2
    assert sorted(c["code"] for c in after["final_codes"]) == ["E11.9", "I10"]
    assert after["review_pending"] is False


def test_every_revision_records_model_and_code_set_versions(
    client: TestClient, app: FastAPI, as_role: Auth
) -> None:
    auth = as_role("integration")
    client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=auth)
    client.post("/v1/encounters", json=encounter_json("e1", "Asthma."), headers=auth)
    with app.state.db.sessions() as session:
        rows = session.scalars(select(RevisionRow).order_by(RevisionRow.revision)).all()
        assert [(r.revision, r.model_version, r.code_set_version) for r in rows] == [
            (1, "fake-1", "ICD-10-CM 2026"),
            (2, "fake-1", "ICD-10-CM 2026"),
        ]
        assert rows[0].encounter_json["documents"][0]["text"] == "Diabetes."
        assert rows[1].result_json["model_version"] == "fake-1"


def test_gold_labels_are_not_stored(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    payload = encounter_json("e1", "Diabetes.", gold={"diagnosis": ["E11.9"], "procedure": []})
    client.post("/v1/encounters", json=payload, headers=as_role("integration"))
    with app.state.db.sessions() as session:
        stored = session.scalars(select(RevisionRow)).one().encounter_json
    assert "gold" not in stored
