"""Input at the edges of every type answers 4xx with a reason, never 5xx, on SQLite and PostgreSQL: NUL
characters, lone surrogates, integers and dates out of range, deep nesting, huge numbers, colliding FHIR
ids, empty notes; and the limits on documents, characters, streamed bodies and model time."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medcode.data.types import Encounter, Result
from medcode.serving.app import create_app
from medcode.serving.orm import EncounterRow

from .conftest import Auth, bearer, make_settings, new_key
from .fakes import FakeCoder, encounter_json, fhir_bundle, fhir_document

JSON = {"Content-Type": "application/json"}
BIG = 2**63


@pytest.fixture
def seeded(client: TestClient, as_role: Auth) -> TestClient:
    """One encounter in review (item 1)."""
    response = client.post(
        "/v1/encounters", json=encounter_json("e1", "Diabetes."), headers=as_role("integration")
    )
    assert response.status_code == 201
    return client


def _reason(response: Any) -> str:
    body = response.json()
    if body.get("resourceType") == "OperationOutcome":
        return " ".join(issue.get("diagnostics", "") for issue in body["issue"])
    return json.dumps(body["detail"])


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/encounters?offset={BIG}",
        f"/v1/review/queue?offset={BIG}",
        f"/v1/audit?offset={BIG}",
        f"/v1/review/items/{BIG}",
        f"/ui/api/review/items/{BIG}/annotations",
        f"/v1/review/items/{10**40}",
    ],
)
def test_integers_out_of_range_are_422(seeded: TestClient, as_role: Auth, path: str) -> None:
    response = seeded.get(path, headers=as_role("admin"))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("action", ["decisions", "finalize", "release"])
def test_item_ids_out_of_range_are_422_on_writes(seeded: TestClient, as_role: Auth, action: str) -> None:
    body = {"decisions": [{"code": "E11.9", "action": "accept"}]} if action == "decisions" else None
    response = seeded.post(f"/v1/review/items/{BIG}/{action}", json=body, headers=as_role("coder"))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "since",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59Z"],
)
@pytest.mark.parametrize("path", ["/v1/encounters", "/v1/audit"])
def test_dates_at_the_edges_of_the_range_never_fail(
    seeded: TestClient, as_role: Auth, path: str, since: str
) -> None:
    response = seeded.get(path, params={"since": since}, headers=as_role("admin"))
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert "out of range" in _reason(response)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/encounters/a%00b",
        "/v1/encounters/a%0Ab",
        "/v1/review/queue?reason=low%00confidence",
        "/v1/audit?encounter_id=e%001",
        "/v1/audit?action=%00",
        "/ui/api/encounters/a%00b/annotations",
        "/v1/codes?q=diab%00etes",
    ],
)
def test_nul_and_control_characters_in_paths_and_queries_are_422(
    seeded: TestClient, as_role: Auth, path: str
) -> None:
    response = seeded.get(path, headers=as_role("admin"))
    assert response.status_code == 422, response.text
    assert "control character" in _reason(response)


@pytest.mark.parametrize(
    "field, value",
    [
        ("encounter_id", "e\u00001"),
        ("text", "Diabetes.\u0000"),
        ("text", "Diabetes \ud800 mellitus"),
        ("document_id", "d\udc001"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/suggest", "/v1/encounters"])
def test_nul_and_lone_surrogates_in_bodies_are_422(
    client: TestClient, as_role: Auth, path: str, field: str, value: str
) -> None:
    payload: dict[str, Any] = encounter_json("e1", "Diabetes.")
    if field == "encounter_id":
        payload["encounter_id"] = value
    else:
        payload["documents"][0][field] = value
    body = json.dumps(payload).encode()  # ensure_ascii: \\u0000 and \\ud800 escapes, as a client sends them
    response = client.post(path, content=body, headers=as_role("integration") | JSON)
    assert response.status_code == 422, response.text
    assert "NUL" in _reason(response) or "surrogate" in _reason(response)


def test_a_nul_in_a_reject_reason_is_422(seeded: TestClient, as_role: Auth) -> None:
    coder = as_role("coder")
    item = seeded.post("/v1/review/claim", headers=coder).json()["item_id"]
    decision = {"code": "E11.9", "action": "reject", "reason": "not \u0000 documented"}
    response = seeded.post(
        f"/v1/review/items/{item}/decisions", json={"decisions": [decision]}, headers=coder
    )
    assert response.status_code == 422 and "NUL" in _reason(response)


@pytest.mark.parametrize("text", ["", "   \n\t  "])
@pytest.mark.parametrize("path", ["/v1/suggest", "/v1/encounters"])
def test_empty_or_blank_notes_are_422(client: TestClient, as_role: Auth, path: str, text: str) -> None:
    response = client.post(path, json=encounter_json("e1", text), headers=as_role("integration"))
    assert response.status_code == 422 and "no text" in _reason(response)


@pytest.mark.parametrize("path", ["/v1/suggest", "/fhir/r4/$suggest-codes", "/v1/admin/keys"])
def test_deep_nesting_and_huge_numbers_are_422(client: TestClient, as_role: Auth, path: str) -> None:
    deep = b'{"resourceType": "Bundle", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = b'{"resourceType": "Bundle", "encounter_id": "e", "patient": {"age": ' + b"7" * 5000 + b"}}"
    for body in (deep, huge):
        response = client.post(path, content=body, headers=as_role("admin") | JSON)
        assert response.status_code == 422, response.text[:300]


def test_two_document_references_with_one_id_are_422(client: TestClient, as_role: Auth) -> None:
    bundle = fhir_bundle(fhir_document(id="n1"), fhir_document(b"Asthma.", id="n1"))
    response = client.post("/fhir/r4/$suggest-codes", json=bundle, headers=as_role("integration"))
    assert response.status_code == 422 and "two DocumentReferences" in _reason(response)


def test_a_generated_document_id_never_collides_with_a_given_one(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    # the first DocumentReference has no id (entry 1 -> "doc1"); the second is called "doc1"
    bundle = fhir_bundle(fhir_document(b"Diabetes."), fhir_document(b"Hypertension.", id="doc1"))
    response = client.post("/fhir/r4/$suggest-codes", json=bundle, headers=as_role("integration"))
    assert response.status_code == 200, response.text
    conditions = [
        e["resource"] for e in response.json()["entry"] if e["resource"]["resourceType"] == "Condition"
    ]
    assert {c["code"]["coding"][0]["code"] for c in conditions} == {"E11.9", "I10"}


def test_a_codec_that_yields_a_surrogate_is_422(client: TestClient, as_role: Auth) -> None:
    bundle = fhir_bundle(fhir_document(b"Diabetes +2AA-", content_type="text/plain; charset=utf-7"))
    response = client.post("/fhir/r4/$suggest-codes", json=bundle, headers=as_role("integration"))
    assert response.status_code == 422 and "surrogate" in _reason(response)


# -- limits ---------------------------------------------------------------------------------------------


def _limited_app(db_url: str, tmp_path: Path, coder: Any = None, **limits: Any) -> FastAPI:
    return create_app(make_settings(db_url, home=tmp_path / "home", **limits), coder=coder or FakeCoder())


def test_too_many_documents_or_characters_are_413_naming_the_limit(db_url: str, tmp_path: Path) -> None:
    app = _limited_app(db_url, tmp_path, max_documents=3, max_encounter_chars=100, max_note_chars=80)
    key = new_key(app, "integration")
    many = encounter_json("e1", "Diabetes.")
    many["documents"] = [{"document_id": f"d{i}", "text": "Diabetes."} for i in range(4)]
    long = encounter_json("e2", "x")
    long["documents"] = [{"document_id": f"d{i}", "text": "y" * 60} for i in range(2)]
    with TestClient(app) as client:
        for payload, limit in ((many, "MEDCODE_MAX_DOCUMENTS"), (long, "MEDCODE_MAX_ENCOUNTER_CHARS")):
            for path in ("/v1/suggest", "/v1/encounters"):
                response = client.post(path, json=payload, headers=bearer(key))
                assert response.status_code == 413 and limit in _reason(response), response.text
        bundle = fhir_bundle(*[fhir_document(id=f"n{i}") for i in range(2000)])
        started = time.perf_counter()
        response = client.post("/fhir/r4/$suggest-codes", json=bundle, headers=bearer(key))
        assert response.status_code == 413 and "MEDCODE_MAX_DOCUMENTS" in _reason(response)
        assert time.perf_counter() - started < 10
    with app.state.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EncounterRow)) == 0
    app.state.db.dispose()


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all() -> None:
    import asyncio

    from medcode.serving.middleware import RequestContextMiddleware

    reached = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    read = []

    async def receive() -> dict[str, Any]:  # 30 MB in 1 kB chunks, no Content-Length
        read.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": len(read) < 30 * 1024}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/suggest",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
    }
    asyncio.run(RequestContextMiddleware(app, max_body_bytes=1 << 20)(scope, receive, send))
    assert sent[0]["status"] == 413 and not reached
    assert len(read) == 1025, "reading stops at the first chunk past the limit"


class SlowCoder(FakeCoder):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.finished = threading.Event()

    def suggest(self, encounter: Encounter) -> Result:
        time.sleep(self.seconds)
        self.finished.set()
        return super().suggest(encounter)


def test_a_suggestion_over_its_time_budget_is_504_and_keeps_its_worker_busy(
    sqlite_url: str, tmp_path: Path
) -> None:
    slow = SlowCoder(4.0)  # far past the 0.3 s budget: the 504 must come long before the work ends
    app = _limited_app(sqlite_url, tmp_path, slow, suggest_timeout_seconds=0.3, suggest_workers=1)
    key = new_key(app, "integration")
    with TestClient(app) as client:
        started = time.perf_counter()
        first = client.post("/v1/suggest", json=encounter_json("e1", "Diabetes."), headers=bearer(key))
        assert first.status_code == 504 and "MEDCODE_SUGGEST_TIMEOUT_SECONDS" in _reason(first)
        assert time.perf_counter() - started < 3.0 and not slow.finished.is_set()
        second = client.post("/v1/encounters", json=encounter_json("e2", "Diabetes."), headers=bearer(key))
        assert second.status_code == 503 and int(second.headers["Retry-After"]) >= 1, second.text
        assert slow.finished.wait(15)
        time.sleep(0.1)
        slow.seconds = 0
        third = client.post("/v1/suggest", json=encounter_json("e3", "Diabetes."), headers=bearer(key))
        assert third.status_code == 200, "the worker is free again once the late suggestion ended"
    with app.state.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EncounterRow)) == 0
    app.state.db.dispose()
