"""Every endpoint refuses the roles it is not for (403), and every endpoint but /health needs a key (401)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from medcode.serving.auth import ROLES, SYSTEM_PRINCIPAL
from medcode.serving.services import keys as key_service

from .conftest import bearer
from .fakes import encounter_json

Auth = Callable[[str], dict[str, str]]
ENCOUNTER = encounter_json("e1", "Diabetes.")
BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}},
        {
            "resource": {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "data": base64.b64encode(b"Diabetes.").decode(),
                        }
                    }
                ],
            }
        },
    ],
}

# (method, path, json body, roles allowed)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/v1/suggest", ENCOUNTER, {"integration", "admin"}),
    ("POST", "/v1/encounters", ENCOUNTER, {"integration", "admin"}),
    ("GET", "/v1/encounters", None, {"integration", "coder", "scientist", "admin"}),
    ("GET", "/v1/encounters/e1", None, {"integration", "coder", "scientist", "admin"}),
    ("GET", "/v1/review/queue", None, {"coder", "admin"}),
    ("POST", "/v1/review/claim", None, {"coder", "admin"}),
    ("GET", "/v1/review/items/1", None, {"coder", "admin"}),
    (
        "POST",
        "/v1/review/items/1/decisions",
        {"decisions": [{"code": "E11.9", "action": "accept"}]},
        {"coder", "admin"},
    ),
    ("POST", "/v1/review/items/1/finalize", None, {"coder", "admin"}),
    ("POST", "/v1/review/items/1/release", None, {"coder", "admin"}),
    ("GET", "/v1/codes?q=diabetes", None, {"integration", "coder", "scientist", "admin"}),
    ("GET", "/v1/audit", None, {"admin"}),
    ("POST", "/fhir/r4/$suggest-codes", BUNDLE, {"integration", "admin"}),
    ("GET", "/v1/admin/keys", None, {"admin"}),
    ("POST", "/v1/admin/keys", {"role": "coder"}, {"admin"}),
    ("DELETE", "/v1/admin/keys/nope", None, {"admin"}),
    ("POST", "/v1/admin/model/reload", None, {"admin"}),
]


def _call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture
def seeded(client: TestClient, as_role: Auth) -> TestClient:
    """One encounter in review (item 1), so that allowed calls reach their handlers."""
    assert client.post("/v1/encounters", json=ENCOUNTER, headers=as_role("integration")).status_code == 201
    return client


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_refused_what_it_may_not_do(seeded: TestClient, as_role: Auth, role: str) -> None:
    for method, path, body, allowed in ENDPOINTS:
        response = _call(seeded, method, path, body, as_role(role))
        if role in allowed:
            assert response.status_code not in (401, 403), f"{role} refused {method} {path}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} allowed {method} {path}: {response.status_code}"
            assert response.json()["code" if not path.startswith("/fhir") else "resourceType"] in (
                "forbidden",
                "OperationOutcome",
            )


def test_every_endpoint_needs_a_valid_key(client: TestClient) -> None:
    for method, path, body, _allowed in ENDPOINTS:
        for headers in ({}, bearer("mck_nope_nope"), {"Authorization": "Basic abc"}):
            response = _call(client, method, path, body, headers)
            assert response.status_code == 401, f"{method} {path} with {headers}: {response.status_code}"


def test_health_needs_no_key(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["db"] == "ok" and body["model_version"] == "fake-1"


def test_a_revoked_key_is_refused(client: TestClient, app: FastAPI) -> None:
    with app.state.db.sessions() as session:
        created = key_service.create(session, SYSTEM_PRINCIPAL, "integration", "soon revoked")
    assert client.get("/v1/encounters", headers=bearer(created.key)).status_code == 200
    with app.state.db.sessions() as session:
        key_service.revoke(session, SYSTEM_PRINCIPAL, created.key_id)
    assert client.get("/v1/encounters", headers=bearer(created.key)).status_code == 401


def test_a_tampered_key_is_refused(client: TestClient, keys: dict[str, str]) -> None:
    key = keys["admin"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert client.get("/v1/audit", headers=bearer(tampered)).status_code == 401


def test_admin_creates_and_revokes_keys_over_the_api(client: TestClient, as_role: Auth) -> None:
    created = client.post(
        "/v1/admin/keys", json={"role": "coder", "name": "new coder"}, headers=as_role("admin")
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert client.get("/v1/review/queue", headers=bearer(key)).status_code == 200
    listed = client.get("/v1/admin/keys", headers=as_role("admin")).json()["keys"]
    assert any(k["name"] == "new coder" and "key" not in k for k in listed)
    revoked = client.delete(f"/v1/admin/keys/{created.json()['key_id']}", headers=as_role("admin"))
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/review/queue", headers=bearer(key)).status_code == 401
