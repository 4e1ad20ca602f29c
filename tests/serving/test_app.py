"""The app itself: OpenAPI docs, health, request ids."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_openapi_documents_every_resource(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/health",
        "/v1/suggest",
        "/v1/encounters",
        "/v1/encounters/{encounter_id}",
        "/v1/review/queue",
        "/v1/review/claim",
        "/v1/review/items/{item_id}/decisions",
        "/v1/review/items/{item_id}/finalize",
        "/v1/review/items/{item_id}/release",
        "/v1/codes",
        "/v1/audit",
        "/fhir/r4/$suggest-codes",
        "/v1/admin/model/reload",
    ):
        assert path in paths, path


def test_health_reports_a_database_that_does_not_answer(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.db, "ping", lambda: False)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["db"] == "error" and response.json()["status"] == "degraded"


def test_responses_carry_the_request_id(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 32
