"""FHIR R4 $suggest-codes: a Bundle round trip (validated with fhir.resources) and OperationOutcomes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from .conftest import Auth

URL = "/fhir/r4/$suggest-codes"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
NOTE = "Admitted for appendicitis; laparoscopic appendectomy. Known hypertension. No chest pain. Diabetes."


def bundle(note: str = NOTE, *, encounter: bool = True, content_type: str = "text/plain") -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
            "resource": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-06-15"},
        },
        {
            "resource": {
                "resourceType": "DocumentReference",
                "id": "note-1",
                "status": "current",
                "type": {"text": "discharge summary"},
                "content": [
                    {
                        "attachment": {
                            "contentType": content_type,
                            "data": base64.b64encode(note.encode()).decode(),
                        }
                    }
                ],
            }
        },
    ]
    if encounter:
        entries.insert(
            1,
            {
                "resource": {
                    "resourceType": "Encounter",
                    "id": "enc-7",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                    "period": {"start": "2024-05-01T10:00:00Z"},
                }
            },
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _resources(answer: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == kind]


def test_bundle_round_trip_reports_conditions_procedures_and_a_draft_claim(
    client: TestClient, as_role: Auth
) -> None:
    response = client.post(URL, json=bundle(), headers=as_role("integration") | FHIR_JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    answer = response.json()
    Bundle.model_validate(answer)  # the answer is valid FHIR R4

    conditions = _resources(answer, "Condition")
    codes = [c["code"]["coding"][0]["code"] for c in conditions]
    assert sorted(codes) == ["E11.9", "I10"]
    assert "R07.9" not in codes  # "No chest pain": a negated finding is never reported as present
    for condition in conditions:
        assert condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
        assert condition["subject"]["reference"] == "urn:uuid:11111111-1111-1111-1111-111111111111"
        assert condition["encounter"]["reference"] == "Encounter/enc-7"
        assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"  # routed to review

    procedures = _resources(answer, "Procedure")
    assert [p["code"]["coding"][0]["code"] for p in procedures] == ["0DTJ4ZZ"]

    (claim,) = _resources(answer, "Claim")
    assert claim["status"] == "draft" and claim["use"] == "claim"
    assert claim["type"]["coding"][0]["code"] == "institutional"
    assert [d["sequence"] for d in claim["diagnosis"]] == [1, 2]
    assert claim["diagnosis"][0]["type"][0]["coding"][0]["code"] == "principal"
    assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim["diagnosis"]] == codes
    assert "R07.9" not in str(claim)
    assert [p["procedureCodeableConcept"]["coding"][0]["code"] for p in claim["procedure"]] == ["0DTJ4ZZ"]


def test_confident_results_are_confirmed_conditions(client: TestClient, as_role: Auth) -> None:
    answer = client.post(URL, json=bundle("Hypertension."), headers=as_role("integration") | FHIR_JSON).json()
    (condition,) = _resources(answer, "Condition")
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"


def test_patient_and_encounter_context_reach_the_model(client: TestClient, as_role: Auth, coder: Any) -> None:
    client.post(URL, json=bundle("Hypertension."), headers=as_role("integration") | FHIR_JSON)
    assert coder.calls == ["enc-7"]


def _outcome(response: Any, status: int) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "Traceback" not in response.text
    return body["issue"]


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        (b"{not json", 400, "not JSON"),
        (b'{"resourceType": "Patient"}', 422, "Bundle"),
        (b'{"resourceType": "Bundle"}', 422, "type"),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]}',
            422,
            "resource type",
        ),
        (b'{"resourceType": "Bundle", "type": "collection", "entry": "x"}', 422, "entry"),
    ],
)
def test_malformed_input_answers_an_operation_outcome(
    client: TestClient, as_role: Auth, payload: bytes, status: int, fragment: str
) -> None:
    response = client.post(URL, content=payload, headers=as_role("integration") | FHIR_JSON)
    issues = _outcome(response, status)
    assert fragment in " ".join(i.get("diagnostics", "") for i in issues)


def test_a_bundle_without_a_note_is_refused(client: TestClient, as_role: Auth) -> None:
    no_text = bundle(content_type="application/pdf")
    issues = _outcome(client.post(URL, json=no_text, headers=as_role("integration") | FHIR_JSON), 422)
    assert "DocumentReference" in issues[0]["diagnostics"]


def test_bad_base64_is_refused(client: TestClient, as_role: Auth) -> None:
    broken = bundle()
    broken["entry"][-1]["resource"]["content"][0]["attachment"]["data"] = "!!!"
    _outcome(client.post(URL, json=broken, headers=as_role("integration") | FHIR_JSON), 422)


def test_fhir_errors_for_auth_and_content_type_are_operation_outcomes(
    client: TestClient, as_role: Auth
) -> None:
    _outcome(client.post(URL, json=bundle()), 401)
    _outcome(
        client.post(URL, content=b"x", headers=as_role("integration") | {"Content-Type": "text/plain"}), 415
    )
    _outcome(client.post(URL, json=bundle(), headers=as_role("coder")), 403)


def test_an_oversized_note_is_413(client: TestClient, as_role: Auth, app: Any) -> None:
    big = "x" * (app.state.settings.max_note_chars + 1)
    _outcome(client.post(URL, json=bundle(big), headers=as_role("integration") | FHIR_JSON), 413)
