"""The role matrix: every endpoint, `/ui/api` included, called by every kind of caller; every cell that
is not allowed is refused (401 without a live identity, 403 for the wrong role, 404/409 across tenants)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from medcode.serving.app import create_app
from medcode.serving.ui import session as ui_session
from medcode.serving.ui.session import PUBLISHED_DEFAULT_SECRET

from .conftest import bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json, fhir_bundle, fhir_document
from .test_security import cookie_header, forge_cookie, sign_in

ENCOUNTER = encounter_json("e1", "Diabetes.")
OTHERS_ENCOUNTER = encounter_json("e2", "Asthma.")
BUNDLE = fhir_bundle(fhir_document(b"Diabetes."))
ALL_ROLES = {"coder", "integration", "scientist", "admin"}
CALLERS = [
    "none",
    "coder",
    "integration",
    "second_integration",
    "scientist",
    "admin",
    "unknown_key",
    "basic_auth",
    "revoked_key",
    "forged_cookie",
    "expired_cookie",
]
UNAUTHENTICATED = {"none", "unknown_key", "basic_auth", "revoked_key", "forged_cookie", "expired_cookie"}

# (method, path, json body, roles allowed); e1 and item 1 belong to the first integration
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/v1/suggest", ENCOUNTER, {"integration", "admin"}),
    ("POST", "/v1/encounters", ENCOUNTER, {"integration", "admin"}),
    ("POST", "/v1/encounters", OTHERS_ENCOUNTER, {"integration", "admin"}),
    ("GET", "/v1/encounters", None, ALL_ROLES),
    ("GET", "/v1/encounters/e1", None, ALL_ROLES),
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
    ("POST", "/v1/review/items/1/claim", None, {"coder", "admin"}),
    ("POST", "/v1/review/items/1/lease", None, {"coder", "admin"}),
    ("PUT", "/v1/review/items/1/sequence", {"sequence": ["ICD-10-CM|E11.9"]}, {"coder", "admin"}),
    ("GET", "/v1/codes?q=diabetes", None, ALL_ROLES),
    ("GET", "/v1/codes/ICD-10-CM/E11.9", None, ALL_ROLES),
    ("GET", "/v1/pcs/builder?prefix=0DT", None, ALL_ROLES),
    ("GET", "/v1/audit", None, {"admin"}),
    ("POST", "/fhir/r4/$suggest-codes", BUNDLE, {"integration", "admin"}),
    ("GET", "/v1/admin/keys", None, {"admin"}),
    ("POST", "/v1/admin/keys", {"role": "coder"}, {"admin"}),
    ("DELETE", "/v1/admin/keys/nope", None, {"admin"}),
    ("POST", "/v1/admin/model/reload", None, {"admin"}),
    ("GET", "/ui/api/encounters/e1/annotations", None, {"coder", "admin"}),
    ("GET", "/ui/api/review/items/1/annotations", None, {"coder", "admin"}),
]
TENANT_REFUSALS = {
    ("GET", "/v1/encounters/e1"): 404,
    ("POST", "/v1/encounters"): 409,
}
"""What the second integration gets on the first one's encounter: it is not there (404), and its id is
taken (409); the first integration's copy stays as it was."""


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    app = create_app(make_settings(db_url, home=tmp_path / "home"), coder=FakeCoder())
    with TestClient(app) as client:
        yield client, _callers(app, client)
    app.state.db.dispose()


def _callers(app: FastAPI, client: TestClient) -> dict[str, dict[str, str]]:
    keys = {role: new_key(app, role) for role in ALL_ROLES}
    keys["second_integration"] = new_key(app, "integration")
    assert (
        client.post("/v1/encounters", json=ENCOUNTER, headers=bearer(keys["integration"])).status_code == 201
    )
    revoked = new_key(app, "admin")
    assert (
        client.delete(f"/v1/admin/keys/{revoked.split('_')[1]}", headers=bearer(keys["admin"])).status_code
        == 200
    )
    admin_id = keys["admin"].split("_")[1]
    callers = {name: bearer(key) for name, key in keys.items()}
    callers["none"] = {}
    callers["unknown_key"] = bearer("mck_nope_nope")
    callers["basic_auth"] = {"Authorization": "Basic abc"}
    callers["revoked_key"] = bearer(revoked)
    callers["forged_cookie"] = cookie_header(
        forge_cookie(PUBLISHED_DEFAULT_SECRET, admin_id), "attacker-csrf"
    )
    callers["expired_cookie"] = _expired_admin_cookie(app, keys["admin"])
    client.cookies.clear()
    return callers


def _expired_admin_cookie(app: FastAPI, admin_key: str) -> dict[str, str]:
    """A real admin session whose cookie was signed 13 hours ago (the limit is 12)."""
    with TestClient(app) as browser:
        live = sign_in(browser, admin_key)
    secret = app.state.session_secret
    payload = URLSafeTimedSerializer(secret, salt=ui_session._SESSION_SALT).loads(live)

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 13 * 3600

    old = URLSafeTimedSerializer(secret, salt=ui_session._SESSION_SALT, signer=Earlier).dumps(payload)
    return cookie_header(old, payload["c"])


def _role(caller: str) -> str | None:
    return {"second_integration": "integration"}.get(caller, None if caller in UNAUTHENTICATED else caller)


@pytest.mark.parametrize("caller", CALLERS)
def test_every_forbidden_cell_is_refused(
    world: tuple[TestClient, dict[str, dict[str, str]]], caller: str
) -> None:
    client, callers = world
    headers = callers[caller]
    role = _role(caller)
    for method, path, body, allowed in ENDPOINTS:
        response = client.request(method, path, json=body, headers=headers)
        where = f"{caller} {method} {path}: {response.status_code} {response.text[:200]}"
        assert response.status_code != 500, where  # (a reload of the fake model answers its 503)
        if role is None:
            assert response.status_code == 401, where
        elif role not in allowed:
            assert response.status_code == 403, where
            if path.startswith("/fhir"):
                assert response.json()["resourceType"] == "OperationOutcome", where
            else:
                assert response.json()["code"] == "forbidden", where
        elif (
            caller == "second_integration"
            and (method, path.split("?")[0]) in TENANT_REFUSALS
            and (body is None or body["encounter_id"] == "e1")
        ):
            assert response.status_code == TENANT_REFUSALS[(method, path)], where
        else:
            assert response.status_code not in (401, 403), where


def test_an_integration_lists_only_its_own_encounters(
    world: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, callers = world
    second = callers["second_integration"]
    assert client.post("/v1/encounters", json=OTHERS_ENCOUNTER, headers=second).status_code == 201
    mine = client.get("/v1/encounters", headers=second).json()
    assert [e["encounter_id"] for e in mine["items"]] == ["e2"] and mine["total"] == 1
    first = client.get("/v1/encounters", headers=callers["integration"]).json()
    assert [e["encounter_id"] for e in first["items"]] == ["e1"]
    everyone = client.get("/v1/encounters", headers=callers["scientist"]).json()
    assert {e["encounter_id"] for e in everyone["items"]} == {"e1", "e2"}


def test_a_second_integration_cannot_supersede_the_first_ones_review(
    world: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, callers = world
    changed = encounter_json("e1", "Asthma and diabetes.")
    refused = client.post("/v1/encounters", json=changed, headers=callers["second_integration"])
    assert refused.status_code == 409 and refused.json()["code"] == "encounter_id_taken"
    state = client.get("/v1/encounters/e1", headers=callers["integration"]).json()
    assert state["revision"] == 1 and state["review_pending"] is True
    assert client.get("/v1/review/items/1", headers=callers["coder"]).json()["status"] == "open"
