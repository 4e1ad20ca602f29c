"""The UI's sign-in, session cookie and CSRF protection, through the app (no browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from medcode.serving.app import create_app
from medcode.serving.auth import SYSTEM_PRINCIPAL
from medcode.serving.services import keys as key_service
from medcode.serving.ui.annotate import header_sections
from medcode.serving.ui.routes import safe_next
from medcode.serving.ui.session import SESSION_COOKIE, decode_session, encode_session, new_session
from tests.serving.conftest import make_settings, new_key

from .conftest import NEGATED_PHRASE, NOTE, encounter_payload, note_coder

UNIT_SECRET = "unit-secret-of-32-characters-or-more"


@pytest.fixture
def ui_app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(
        make_settings(f"sqlite:///{tmp_path / 'ui.db'}", session_secret=UNIT_SECRET), coder=note_coder()
    )
    yield app
    app.state.db.dispose()


@pytest.fixture
def ui_client(ui_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(ui_app, base_url="http://testserver") as client:
        yield client


def _signin_token(client: TestClient) -> str:
    page = client.get("/ui/signin")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the sign-in form carries a token"
    return match.group(1)


def _sign_in(client: TestClient, key: str, next_page: str = "/ui/queue") -> tuple[str, object]:
    token = _signin_token(client)
    response = client.post(
        "/ui/signin", data={"api_key": key, "csrf_token": token, "next": next_page}, follow_redirects=False
    )
    return token, response


def _csrf_of(client: TestClient) -> str:
    page = client.get("/ui/queue")
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert match, "signed-in pages carry the session's CSRF token"
    return match.group(1)


def _submit(client: TestClient, key: str, encounter_id: str = "enc-1") -> None:
    response = client.post(
        "/v1/encounters?route=review",
        json=encounter_payload(encounter_id),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code in (200, 201), response.text


def test_pages_redirect_to_signin_without_a_session(ui_client: TestClient) -> None:
    response = ui_client.get("/ui/review/1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/signin?next=/ui/review/1")


def test_signin_with_a_valid_key_sets_a_strict_httponly_cookie(
    ui_client: TestClient, ui_app: FastAPI
) -> None:
    key = new_key(ui_app, "coder", "alice")
    _, response = _sign_in(ui_client, key)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/queue"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain http here; https responses add Secure
    assert key not in cookie, "the API key itself never goes into the cookie"
    page = ui_client.get("/ui/queue")
    assert page.status_code == 200 and "alice" in page.text
    assert "Content-Security-Policy" in page.headers


def test_signin_over_https_marks_the_cookie_secure(ui_app: FastAPI) -> None:
    key = new_key(ui_app, "coder")
    with TestClient(ui_app, base_url="https://testserver") as client:
        _, response = _sign_in(client, key)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "Secure" in cookie


def test_signin_with_a_wrong_key_is_refused(ui_client: TestClient) -> None:
    _, response = _sign_in(ui_client, "mck_nothere_secret")
    assert response.status_code == 401
    assert "not valid" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_signin_without_the_form_token_is_refused(ui_client: TestClient, ui_app: FastAPI) -> None:
    key = new_key(ui_app, "coder")
    ui_client.get("/ui/signin")
    response = ui_client.post(
        "/ui/signin", data={"api_key": key, "csrf_token": "forged"}, follow_redirects=False
    )
    assert response.status_code == 400
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_signin_never_redirects_off_site() -> None:
    assert safe_next("https://evil.example/") == "/ui/queue"
    assert safe_next("//evil.example/ui/") == "/ui/queue"
    assert safe_next("/ui/review/3") == "/ui/review/3"


def test_api_state_change_with_the_cookie_needs_the_csrf_header(
    ui_client: TestClient, ui_app: FastAPI
) -> None:
    coder = new_key(ui_app, "coder")
    _submit(ui_client, new_key(ui_app, "integration"))
    _sign_in(ui_client, coder)
    assert ui_client.get("/v1/review/queue").status_code == 200, "reads work with the cookie alone"
    refused = ui_client.post("/v1/review/claim")
    assert refused.status_code == 403
    assert ui_client.post("/v1/review/claim", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    claimed = ui_client.post("/v1/review/claim", headers={"X-CSRF-Token": _csrf_of(ui_client)})
    assert claimed.status_code == 200
    assert claimed.json()["encounter_id"] == "enc-1"


def test_a_revoked_key_ends_its_session(ui_client: TestClient, ui_app: FastAPI) -> None:
    with ui_app.state.db.sessions() as session:
        created = key_service.create(session, SYSTEM_PRINCIPAL, "coder", "bob")
    _sign_in(ui_client, created.key)
    assert ui_client.get("/v1/review/queue").status_code == 200
    with ui_app.state.db.sessions() as session:
        key_service.revoke(session, SYSTEM_PRINCIPAL, created.key_id)
    assert ui_client.get("/v1/review/queue").status_code == 401
    assert ui_client.get("/ui/queue", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_is_ignored(ui_app: FastAPI) -> None:
    value = encode_session(UNIT_SECRET, new_session("abc", "x", "admin"))
    assert decode_session(UNIT_SECRET, value) is not None
    assert decode_session(UNIT_SECRET, value[:-2] + ("AA" if not value.endswith("AA") else "BB")) is None
    assert decode_session(UNIT_SECRET, "garbage") is None
    assert decode_session("another-secret-of-32-characters-or-more", value) is None


def test_signout_clears_the_session(ui_client: TestClient, ui_app: FastAPI) -> None:
    _sign_in(ui_client, new_key(ui_app, "coder"))
    csrf = _csrf_of(ui_client)
    assert ui_client.post("/ui/signout", data={"csrf_token": "wrong"}).status_code == 403
    response = ui_client.post("/ui/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert ui_client.get("/v1/review/queue").status_code == 401


def test_annotations_mark_the_negated_mention(
    ui_client: TestClient, ui_app: FastAPI, ui_pipeline: Any
) -> None:
    _submit(ui_client, new_key(ui_app, "integration"), "enc-neg")
    _sign_in(ui_client, new_key(ui_app, "coder"))
    body = ui_client.get("/ui/api/encounters/enc-neg/annotations").json()
    doc = body["documents"][0]
    assert doc["text"] == NOTE
    assert body["mentions_available"]
    assert [s["name"] for s in doc["sections"]] == ["chief_complaint", "hpi", "assessment_and_plan"]
    assert (
        NOTE[doc["sections"][1]["start"] : doc["sections"][1]["header_end"]] == "HISTORY OF PRESENT ILLNESS:"
    )
    start = NOTE.index(NEGATED_PHRASE)
    negated = [m for m in doc["mentions"] if m["start"] <= start < m["end"]]
    assert negated and all(m["assertion"]["negated"] for m in negated)
    family = [m for m in doc["mentions"] if m["text"] == "breast cancer"]
    assert family and family[0]["assertion"]["family"]


def test_header_sections_are_found_without_the_pipeline() -> None:
    spans = header_sections(NOTE)
    assert [s.label for s in spans] == [
        "CHIEF COMPLAINT",
        "HISTORY OF PRESENT ILLNESS",
        "ASSESSMENT AND PLAN",
    ]
    assert all(NOTE[s.start : s.header_end].endswith(":") for s in spans)
    assert spans[-1].end == len(NOTE)


def test_static_assets_are_served_as_javascript(ui_client: TestClient) -> None:
    response = ui_client.get("/ui/static/encounter.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert ui_client.get("/ui/static/../routes.py").status_code == 404
