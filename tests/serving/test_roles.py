"""Keys: /health needs none, a revoked or tampered key is refused, an admin manages keys over the API (which
role may call which endpoint is the matrix in test_role_matrix.py)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from medcode.serving.auth import SYSTEM_PRINCIPAL
from medcode.serving.services import keys as key_service

from .conftest import Auth, bearer


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
