"""Sessions that cannot be forged or outlive sign-out, throttled sign-ins, audited rejections, rate limits,
and coders who do not learn other keys' ids."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from pydantic import ValidationError

from medcode.serving.app import create_app
from medcode.serving.services.audit import list_events
from medcode.serving.ui import session as ui_session
from medcode.serving.ui.session import (
    PUBLISHED_DEFAULT_SECRET,
    SECRET_FILE,
    SESSION_COOKIE,
    resolve_session_secret,
)

from .conftest import bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json


def _app(db_url: str, tmp_path: Path, **overrides: Any) -> FastAPI:
    settings = make_settings(db_url, home=tmp_path / "home", **overrides)
    return create_app(settings, coder=FakeCoder())


@pytest.fixture
def secure_app(db_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    app = _app(db_url, tmp_path)
    yield app
    app.state.db.dispose()


def sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; the session cookie's value."""
    page = client.get("/ui/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/ui/signin", data={"api_key": key, "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return client.cookies[SESSION_COOKIE]


def cookie_header(value: str, csrf: str | None = None) -> dict[str, str]:
    headers = {"Cookie": f"{SESSION_COOKIE}={value}"}
    return headers | ({"X-CSRF-Token": csrf} if csrf else {})


def forge_cookie(
    secret: str, key_id: str, role: str = "admin", *, salt: str = ui_session._SESSION_SALT
) -> str:
    """What an attacker who knows `secret` signs: an admin's key id, a made-up session and CSRF token."""
    payload = {"s": "made-up", "k": key_id, "n": "x", "r": role, "c": "attacker-csrf"}
    return URLSafeTimedSerializer(secret, salt=salt).dumps(payload)


# -- the secret ---------------------------------------------------------------------------------------


def test_without_a_secret_one_is_generated_into_home_readable_only_by_its_owner(tmp_path: Path) -> None:
    first = resolve_session_secret(None, tmp_path)
    path = tmp_path / SECRET_FILE
    assert len(first) >= 32 and path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_session_secret(None, tmp_path) == first, "later starts read the same secret"
    assert resolve_session_secret(PUBLISHED_DEFAULT_SECRET, tmp_path) == first, "the published one is unused"
    assert resolve_session_secret(None, tmp_path / "other") != first


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_short_secret_is_refused_at_startup(sqlite_url: str, tmp_path: Path, environment: str) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        _app(sqlite_url, tmp_path, session_secret="x", environment=environment)


def test_a_cookie_forged_with_the_published_default_secret_opens_nothing(
    secure_app: FastAPI,
) -> None:
    admin = new_key(secure_app, "admin")
    admin_id = admin.split("_")[1]
    with TestClient(secure_app) as client:
        for salt in (ui_session._SESSION_SALT, "medcode-ui-session.v1"):
            forged = forge_cookie(PUBLISHED_DEFAULT_SECRET, admin_id, salt=salt)
            assert client.get("/v1/audit", headers=cookie_header(forged)).status_code == 401
            created = client.post(
                "/v1/admin/keys", json={"role": "admin"}, headers=cookie_header(forged, "attacker-csrf")
            )
            assert created.status_code == 401


def test_a_cookie_signed_with_the_real_secret_needs_a_live_server_side_session(secure_app: FastAPI) -> None:
    admin = new_key(secure_app, "admin")
    forged = forge_cookie(secure_app.state.session_secret, admin.split("_")[1])
    with TestClient(secure_app) as client:
        assert client.get("/v1/audit", headers=cookie_header(forged)).status_code == 401


# -- sessions end server-side ---------------------------------------------------------------------------


def test_a_copied_session_cookie_dies_at_sign_out(secure_app: FastAPI) -> None:
    key = new_key(secure_app, "coder")
    with TestClient(secure_app) as client:
        copied = sign_in(client, key)
        assert client.get("/v1/review/queue").status_code == 200
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/ui/queue").text)
        assert csrf is not None
        signed_out = client.post("/ui/signout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert signed_out.status_code == 303
    with TestClient(secure_app) as other:
        assert other.get("/v1/review/queue", headers=cookie_header(copied)).status_code == 401


def test_revoking_a_key_ends_its_sessions_server_side(secure_app: FastAPI) -> None:
    from sqlalchemy import select

    from medcode.serving.orm import UiSessionRow

    key = new_key(secure_app, "coder")
    admin = new_key(secure_app, "admin")
    with TestClient(secure_app) as client:
        copied = sign_in(client, key)
        assert client.delete(f"/v1/admin/keys/{key.split('_')[1]}", headers=bearer(admin)).status_code == 200
        assert client.get("/v1/review/queue", headers=cookie_header(copied)).status_code == 401
    with secure_app.state.db.sessions() as session:
        rows = session.scalars(select(UiSessionRow).where(UiSessionRow.key_id == key.split("_")[1])).all()
    assert rows and all(row.revoked_at is not None for row in rows)


# -- failed sign-ins and rejected keys --------------------------------------------------------------------


def _audit_events(app: FastAPI, action: str) -> list[dict[str, Any]]:
    with app.state.db.sessions() as session:
        page = list_events(session, action=action)
    return [event.model_dump(mode="json") for event in page.events]


def test_failed_sign_ins_are_throttled_with_retry_after_and_audited_without_the_key(
    db_url: str, tmp_path: Path
) -> None:
    app = _app(db_url, tmp_path, signin_max_failures=3, signin_backoff_seconds=60)
    real = new_key(app, "coder")
    wrong = f"mck_{real.split('_')[1]}_WRONGSECRETWRONGSECRET"
    statuses = []
    with TestClient(app) as client:
        for _ in range(5):
            page = client.get("/ui/signin")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            response = client.post("/ui/signin", data={"api_key": wrong, "csrf_token": token.group(1)})
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429, 429]
        assert int(response.headers["Retry-After"]) >= 60
        locked = client.get("/v1/review/queue", headers=bearer(real))
        assert locked.status_code == 429, "a locked-out client waits, whatever key it tries next"
    events = _audit_events(app, "auth.signin_failed")
    assert len(events) == 3
    assert all(
        e["entity_id"] == real.split("_")[1] and e["after"]["reason"] == "wrong_secret" for e in events
    )
    assert "WRONGSECRET" not in str(events)
    app.state.db.dispose()


def test_rejected_api_keys_are_audited_without_the_key_and_throttled(db_url: str, tmp_path: Path) -> None:
    app = _app(db_url, tmp_path, signin_max_failures=2, signin_backoff_seconds=30)
    revoked = new_key(app, "integration")
    with TestClient(app) as client:
        admin = new_key(app, "admin")
        client.delete(f"/v1/admin/keys/{revoked.split('_')[1]}", headers=bearer(admin))
        first = client.get("/v1/encounters", headers=bearer(revoked))
        second = client.get("/v1/encounters", headers=bearer("mck_0123abcd_guessedsecret"))
        third = client.get("/v1/encounters", headers=bearer("mck_0123abcd_guessedsecret"))
    assert (first.status_code, second.status_code, third.status_code) == (401, 401, 429)
    assert 1 <= int(third.headers["Retry-After"]) <= 30
    events = _audit_events(app, "auth.key_rejected")
    assert [(e["entity_id"], e["after"]["reason"]) for e in events] == [
        (revoked.split("_")[1], "revoked"),
        ("0123abcd", "unknown"),
    ]
    assert revoked.split("_", 2)[2] not in str(events) and "guessedsecret" not in str(events)
    app.state.db.dispose()


def test_requests_over_the_per_key_rate_limit_get_429_with_retry_after(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = _app(sqlite_url, tmp_path, rate_limit_per_minute=3)
    busy, calm = new_key(app, "scientist"), new_key(app, "scientist")
    with TestClient(app) as client:
        statuses = [client.get("/v1/encounters", headers=bearer(busy)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/v1/encounters", headers=bearer(busy))
        assert limited.json()["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 20
        assert client.get("/v1/encounters", headers=bearer(calm)).status_code == 200, "limits are per key"
    app.state.db.dispose()


# -- coders do not learn other keys' ids ------------------------------------------------------------------


def test_a_coder_sees_that_an_item_is_held_but_not_by_which_key(secure_app: FastAPI) -> None:
    integration, alice, bob, admin = (
        new_key(secure_app, r) for r in ("integration", "coder", "coder", "admin")
    )
    alice_id = alice.split("_")[1]
    with TestClient(secure_app) as client:
        client.post("/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=bearer(integration))
        item_id = client.post("/v1/review/claim", headers=bearer(alice)).json()["item_id"]
        for_bob = client.get("/v1/review/queue", headers=bearer(bob)).json()["items"][0]
        assert for_bob["claimed"] and for_bob["lease_holder"] not in (None, alice_id)
        item_for_bob = client.get(f"/v1/review/items/{item_id}", headers=bearer(bob)).json()
        assert item_for_bob["lease_holder"] != alice_id
        assert alice_id not in client.get("/v1/review/queue", headers=bearer(bob)).text
        for_alice = client.get("/v1/review/queue", headers=bearer(alice)).json()["items"][0]
        assert for_alice["lease_holder"] == alice_id, "a coder recognises its own lease"
        for_admin = client.get("/v1/review/queue", headers=bearer(admin)).json()["items"][0]
        assert for_admin["lease_holder"] == alice_id


def test_api_responses_carry_nosniff_and_no_store(secure_app: FastAPI) -> None:
    key = new_key(secure_app, "scientist")
    with TestClient(secure_app) as client:
        for response in (
            client.get("/v1/encounters", headers=bearer(key)),
            client.get("/v1/encounters/nope", headers=bearer(key)),
            client.get("/v1/encounters"),
        ):
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-store"
