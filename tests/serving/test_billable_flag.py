"""The review page's billable flag and the finalize checks answer from one source and agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.codesystems import CodeSets
from medcode.data.types import Document, Encounter
from medcode.serving.services import codes
from medcode.serving.services.review_checks import check_codes
from medcode.serving.services.review_state import CodeState
from tests.data.conftest import HCPCS_TSV, PCS_CODES, PCS_TABLES

ENCOUNTER = Encounter(encounter_id="e1", documents=[Document(document_id="d1", text="Seen today.")])

# (system, code, billable): a header, a billable code, one missing its 7th character, a PCS table prefix
# known and unknown, a full PCS code, an HCPCS code
CASES = [
    ("ICD-10-CM", "E11", False),
    ("ICD-10-CM", "E11.9", True),
    ("ICD-10-CM", "S72.001", False),
    ("ICD-10-PCS", "0DTJ", False),
    ("ICD-10-PCS", "0DTK", False),
    ("ICD-10-PCS", "0DTJ4ZZ", True),
    ("HCPCS", "J1611", True),
]


@pytest.fixture
def code_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CodeSets:
    """The service's configured code sets: the packaged ICD-10-CM, a tiny PCS release and HCPCS file."""
    root = tmp_path / "datasets"
    (root / "icd10pcs").mkdir(parents=True)
    (root / "icd10pcs" / "icd10pcs_tables_2021.xml").write_text(PCS_TABLES, encoding="utf-8")
    (root / "icd10pcs" / "icd10pcs-codes-2024.txt").write_text(PCS_CODES, encoding="utf-8")
    (root / "hcpcs").mkdir()
    (root / "hcpcs" / "hcpcs_2025_oct_codes.tsv").write_text(HCPCS_TSV, encoding="utf-8")
    sets = CodeSets(root)
    monkeypatch.setattr(codes, "configured_code_sets", lambda: sets)
    return sets


@pytest.mark.parametrize(("system", "code", "expected"), CASES)
def test_review_flag_agrees_with_the_finalize_checks(
    code_sets: CodeSets, system: str, code: str, expected: bool
) -> None:
    flag = codes.billable(code, system)
    kept = CodeState(system, code, "", None, [], "coder", status="accepted")
    refused = [p for p in check_codes([kept], ENCOUNTER, None) if code in p.codes and not p.overridable]
    assert flag is expected
    assert (flag is False) == bool(refused), refused


def test_the_code_sets_answer_the_review_flag(code_sets: CodeSets) -> None:
    """The one source: the review page's flag is the code-knowledge API's answer."""
    for system, code, _ in CASES:
        assert codes.billable(code, system) is code_sets.billable(code, system)
    assert codes.billable("0DTJ4ZZ9", "ICD-10-PCS") is False  # never 7 characters: never on a claim
    assert codes.billable("Q99.999", "ICD-10-CM") is None  # no release knows it
    assert codes.billable("E11.9", "SNOMED") is None  # no such code system
