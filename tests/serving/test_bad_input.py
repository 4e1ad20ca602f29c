"""Bad input answers a clear 4xx; an internal error answers 500 with a request id, never a stack trace,
and leaves nothing half-written; note text never reaches the log."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medcode.data.types import Result
from medcode.serving.app import create_app
from medcode.serving.orm import AuditEventRow, EncounterRow, ReviewItemRow, RevisionRow

from .conftest import Auth, bearer, make_settings, new_key
from .fakes import FakeClock, FakeCoder, encounter_json

SECRET_NOTE = "Zanzibar-quokka patient narrative with diabetes"


def test_invalid_json_is_422_with_the_reason(client: TestClient, as_role: Auth) -> None:
    response = client.post(
        "/v1/encounters",
        content=b'{"encounter_id": ',
        headers=as_role("integration") | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_schema_errors_are_422_with_the_field(client: TestClient, as_role: Auth) -> None:
    response = client.post(
        "/v1/suggest", json={"encounter_id": "e1", "documents": []}, headers=as_role("integration")
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "documents"]
    assert "input" not in detail[0]  # the request body is not echoed back


def test_duplicate_document_ids_are_422(client: TestClient, as_role: Auth) -> None:
    payload = encounter_json("e1", "x")
    payload["documents"] = [{"document_id": "d1", "text": "a"}, {"document_id": "d1", "text": "b"}]
    assert client.post("/v1/suggest", json=payload, headers=as_role("integration")).status_code == 422


def test_a_note_over_the_limit_is_413(app: FastAPI, client: TestClient, as_role: Auth) -> None:
    big = "x" * (app.state.settings.max_note_chars + 1)
    for path in ("/v1/suggest", "/v1/encounters"):
        response = client.post(path, json=encounter_json("e1", big), headers=as_role("integration"))
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_a_body_over_the_limit_is_413_before_parsing(sqlite_url: str, coder: FakeCoder) -> None:
    app = create_app(make_settings(sqlite_url, max_note_chars=1000), coder=coder)
    key = new_key(app, "integration")
    with TestClient(app) as client:
        body = b"[" + b"0," * 600_000 + b"0]"
        response = client.post(
            "/v1/suggest", content=body, headers=bearer(key) | {"Content-Type": "application/json"}
        )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_wrong_content_type_is_415(client: TestClient, as_role: Auth, content_type: str) -> None:
    response = client.post(
        "/v1/encounters",
        content=b'{"encounter_id": "e1"}',
        headers=as_role("integration") | {"Content-Type": content_type},
    )
    assert response.status_code == 415


def test_a_missing_content_type_is_415(client: TestClient, as_role: Auth) -> None:
    response = client.post("/v1/suggest", content=b"{}", headers=as_role("integration"))
    assert response.status_code == 415


def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json()["request_id"]


def test_a_model_failure_is_a_500_with_a_request_id_and_no_trace(
    client: TestClient, app: FastAPI, as_role: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/v1/encounters", json=encounter_json("e1", f"CRASH {SECRET_NOTE}"), headers=as_role("integration")
    )
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "detail": "internal error",
        "code": "internal_error",
        "request_id": response.headers["x-request-id"],
    }
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert "RuntimeError" in caplog.text and body["request_id"] in caplog.text  # the log has what ops need
    assert SECRET_NOTE not in caplog.text  # ... but not the note (the exception message quotes it)
    with app.state.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EncounterRow)) == 0


def test_a_failure_mid_transaction_leaves_nothing_half_written(sqlite_url: str, coder: FakeCoder) -> None:
    def broken_priority(result: Result) -> float:
        raise RuntimeError("priority hook failed")

    app = create_app(make_settings(sqlite_url), coder=coder, priority_fn=broken_priority, clock=FakeClock())
    key = new_key(app, "integration")
    with TestClient(app) as client:
        response = client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=bearer(key))
        assert response.status_code == 500
        assert client.get("/v1/encounters/e1", headers=bearer(key)).status_code == 404
    with app.state.db.sessions() as session:
        for table in (EncounterRow, RevisionRow, ReviewItemRow):
            assert session.scalar(select(func.count()).select_from(table)) == 0
        actions = session.scalars(select(AuditEventRow.action)).all()
        assert "encounter.submitted" not in actions


def test_note_text_never_reaches_the_log(
    client: TestClient, as_role: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = as_role("integration")
    payload = encounter_json("e1", SECRET_NOTE)
    assert client.post("/v1/suggest", json=payload, headers=auth).status_code == 200
    assert client.post("/v1/encounters", json=payload, headers=auth).status_code == 201
    bad = encounter_json("e2", SECRET_NOTE)
    bad["patient"] = {"age": -5}
    assert client.post("/v1/suggest", json=bad, headers=auth).status_code == 422
    assert caplog.records, "the requests were logged"
    assert "/v1/suggest" in caplog.text
    assert SECRET_NOTE not in caplog.text
    assert "Zanzibar" not in caplog.text
