"""GET /v1/codes/{system}/{code}: the tabular drill-down behind a search hit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medcode.data.codesystems import CodeSets
from medcode.serving.errors import InvalidRequest, NotFound
from medcode.serving.services.code_detail import pcs_step
from tests.data.conftest import PCS_CODES, PCS_TABLES

from .conftest import Auth


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


def _tiny_pcs(tmp_path: Path) -> CodeSets:
    folder = tmp_path / "datasets" / "icd10pcs"
    folder.mkdir(parents=True)
    (folder / "icd10pcs_tables_2021.xml").write_text(PCS_TABLES, encoding="utf-8")
    (folder / "icd10pcs-codes-2024.txt").write_text(PCS_CODES, encoding="utf-8")
    return CodeSets(tmp_path / "datasets")


def test_pcs_builder_offers_only_valid_values_axis_by_axis(tmp_path: Path) -> None:
    sets = _tiny_pcs(tmp_path)
    first = pcs_step(sets, "")
    assert (first.position, first.axis) == (1, "Section")
    # B (imaging) has codes but no table in this release: offered, without a label
    assert [(o.character, o.label) for o in first.options] == [("0", "Medical and Surgical"), ("B", "")]
    approach = pcs_step(sets, "0dtj")
    assert approach.chosen == ["Medical and Surgical", "Gastrointestinal System", "Resection", "Appendix"]
    assert (approach.position, approach.axis) == (5, "Approach")
    assert [(o.character, o.label) for o in approach.options] == [
        ("0", "Open"),
        ("4", "Percutaneous Endoscopic"),
    ]
    done = pcs_step(sets, "0DTJ4ZZ")
    assert done.complete and done.position is None and done.options == [] and done.title
    with pytest.raises(NotFound):
        pcs_step(sets, "0DTK")  # no valid code continues this way
    with pytest.raises(InvalidRequest):
        pcs_step(sets, "0DI")  # I is never a PCS character


def test_pcs_builder_endpoint_refuses_a_bad_prefix_with_a_reason(client: TestClient, as_role: Auth) -> None:
    response = client.get("/v1/pcs/builder", params={"prefix": "0D!"}, headers=as_role("coder"))
    assert response.status_code == 422
    assert "not the start of an ICD-10-PCS code" in response.json()["detail"]
