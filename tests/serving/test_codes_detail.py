"""GET /v1/codes/{system}/{code}: the tabular drill-down behind a search hit."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]


def _detail(client: TestClient, auth: Auth, system: str, code: str) -> dict:
    response = client.get(f"/v1/codes/{system}/{code}", headers=auth("coder"))
    assert response.status_code == 200, response.text
    return response.json()


def test_detail_gives_the_path_children_and_seventh_characters_of_a_header(
    client: TestClient, as_role: Auth
) -> None:
    body = _detail(client, as_role, "ICD-10-CM", "s72.001")
    assert body["code"] == "S72.001" and body["billable"] is False
    assert [(s["level"], s["code"]) for s in body["path"]] == [
        ("chapter", "19"),
        ("block", "S70-S79"),
        ("category", "S72"),
        ("subcategory", "S72.0"),
        ("subcategory", "S72.00"),
        ("code", "S72.001"),
    ]
    assert "S72.001A" in {c["code"] for c in body["children"]}
    sevenths = {s["character"]: s for s in body["seventh_characters"]}
    assert sevenths["A"]["meaning"] == "initial encounter for closed fracture"
    assert sevenths["A"]["code"] == "S72.001A"
    assert "7th character" in body["seventh_character_note"]


def test_detail_lists_the_notes_that_apply_with_where_they_are_written(
    client: TestClient, as_role: Auth
) -> None:
    notes = _detail(client, as_role, "ICD-10-CM", "S72.001A")["notes"]
    kinds = {(n["kind"], n["where"]) for n in notes}
    assert ("excludes1", "S72") in kinds  # traumatic amputation of hip and thigh, from the category
    assert ("excludes2", "S72.0") in kinds  # physeal fracture, from the subcategory
    e11 = _detail(client, as_role, "ICD-10-CM", "E11.22")
    assert any(n["kind"] == "use_additional" for n in e11["notes"])  # N18.- stage of the CKD
    assert _detail(client, as_role, "ICD-10-CM", "S72.001A")["seventh_characters"] == []


def test_detail_of_an_unknown_code_is_404_with_a_reason(client: TestClient, as_role: Auth) -> None:
    response = client.get("/v1/codes/ICD-10-CM/Q99.999", headers=as_role("coder"))
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_code" and "Q99.999" in response.json()["detail"]
    assert client.get("/v1/codes/SNOMED/E11.9", headers=as_role("coder")).status_code == 422
