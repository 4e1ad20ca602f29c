"""Logs without identifiers: marked encounter ids, document ids, note text and request ids go through
every kind of endpoint, error paths included, and appear in no log line and no file under MEDCODE_HOME
(the database aside); access lines name route templates."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medcode.serving.app import create_app

from .conftest import bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json, fhir_bundle, fhir_document

CLIENT_LOGGERS = ("httpx", "httpcore")
MARKS = ("ENCMARK7731", "DOCMARK4410", "NOTEMARK5520", "RIDMARK9001", "FORGEDLINE")


def test_marked_identifiers_reach_no_log_and_no_file(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    app = create_app(make_settings(sqlite_url, home=home), coder=FakeCoder())
    keys = {role: new_key(app, role) for role in ("integration", "coder", "admin", "scientist")}
    note = "NOTEMARK5520 Patient with diabetes and hypertension."
    encounter = encounter_json("ENCMARK7731", note)
    encounter["documents"][0]["document_id"] = "DOCMARK4410"
    encounter_resource = {
        "resourceType": "Encounter",
        "id": "ENCMARK7731",
        "status": "finished",
        "class": {"code": "AMB"},
    }
    bundle = fhir_bundle(encounter_resource, fhir_document(note, id="DOCMARK4410"))
    caplog.set_level(logging.DEBUG)
    with TestClient(app, raise_server_exceptions=False) as client:
        integration, coder, admin = (bearer(keys[r]) for r in ("integration", "coder", "admin"))
        rid = {"X-Request-ID": "RIDMARK9001\nFORGEDLINE"}
        calls = [
            client.post("/v1/suggest", json=encounter, headers=integration | rid),
            client.post("/v1/encounters", json=encounter, headers=integration),
            client.get("/v1/encounters/ENCMARK7731", headers=integration),
            client.get("/v1/encounters/ENCMARK7731-missing", headers=integration),
            client.get("/v1/encounters/ENCMARK7731%0AFORGEDLINE", headers=integration),
            client.get("/v1/encounters/ENCMARK7731%00", headers=integration),
            client.get("/ui/api/encounters/ENCMARK7731/annotations", headers=coder),
            client.get("/ui/api/encounters/ENCMARK7731/annotations", headers=integration),
            client.post("/v1/review/claim", headers=coder),
            client.get("/v1/review/queue?reason=ENCMARK7731", headers=coder),
            client.get("/v1/audit?encounter_id=ENCMARK7731", headers=admin),
            client.post("/fhir/r4/$suggest-codes", json=bundle, headers=integration),
            client.post(
                "/v1/suggest", json=encounter_json("ENCMARK7731", "CRASH NOTEMARK5520"), headers=integration
            ),
            client.post(
                "/v1/suggest", json=encounter_json("ENCMARK7731", "NOTEMARK5520\u0000"), headers=integration
            ),
            client.post(
                "/v1/encounters",
                json=encounter_json("ENCMARK7731", "NOTEMARK5520 again"),
                headers=bearer(new_key(app, "integration")),
            ),
            client.get("/v1/encounters/ENCMARK7731", headers=bearer("mck_ENCMARK7731_NOTEMARK5520")),
            client.get("/v1/encounters", headers={"X-Request-ID": "RIDMARK9001" * 10} | integration),
        ]
    statuses = [c.status_code for c in calls]
    assert statuses[:3] == [200, 201, 200] and 500 in statuses and 404 in statuses and 422 in statuses
    assert all(c.headers["X-Request-ID"] and "RIDMARK9001" not in c.headers["X-Request-ID"] for c in calls)
    server = [
        r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)
    ]  # the test's own client aside
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server)
    assert "/v1/encounters/{encounter_id}" in text, "access lines name the route template"
    assert "/ui/api/encounters/{encounter_id}/annotations" in text
    for mark in MARKS:
        assert mark not in text, f"{mark} reached a log line"
    assert all("\x00" not in record.getMessage() for record in server)
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files, "the home holds at least the generated session secret"
    for path in files:
        content = path.read_bytes()
        for mark in MARKS:
            assert mark.encode() not in content, f"{mark} in {path}"
    app.state.db.dispose()


def test_a_client_request_id_is_kept_only_when_well_formed(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(sqlite_url, home=tmp_path / "home"), coder=FakeCoder())
    with TestClient(app) as client:
        assert (
            client.get("/health", headers={"X-Request-ID": "abc-123.x_y"}).headers["X-Request-ID"]
            == "abc-123.x_y"
        )
        for bad in ("abc\n", "a" * 65, "a b", "a;b"):
            given = client.get("/health", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
            assert given != bad and len(given) == 32
    app.state.db.dispose()
