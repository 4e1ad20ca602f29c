from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.hcpcs import load_hcpcs, read_hcpcs_anweb_csv, read_hcpcs_tsv

ANWEB_CSV = """\
Code,Description1,Description2,Type,Unknown1,Unknown2,Unknown3,Unknown4
A1001007,Dressing for one wound,Dressing for one wound,,,C,,200207012002
J1611000103,"Injection, glucagon hydrochloride (fresenius kabi), not therapeutically",Inj glucagon hcl fresenius,,,,,
J1611000204,"equivalent to j1610, per 1 mg",,,,,,
"""


def test_tsv_codes_and_modifiers(data_root: Path) -> None:
    hcpcs = load_hcpcs(data_root)
    assert hcpcs.version == "HCPCS Oct 2025"
    assert len(hcpcs) == 3
    assert hcpcs["j1611"].title == "Injection, glucagon hydrochloride, per 1 mg"
    assert hcpcs["J1611"].billable
    assert [m.code for m in hcpcs.modifiers()] == ["GT"]
    assert not hcpcs["GT"].billable


def test_raw_anweb_csv_joins_continuation_lines(tmp_path: Path) -> None:
    path = tmp_path / "HCPC2025_OCT_ANWEB.csv"
    path.write_text(ANWEB_CSV, encoding="utf-8")
    codes = read_hcpcs_anweb_csv(path)
    assert codes["J1611"].title == (
        "Injection, glucagon hydrochloride (fresenius kabi), not therapeutically equivalent to j1610, per 1 mg"
    )
    assert codes["J1611"].short_title == "Inj glucagon hcl fresenius"
    assert codes["A1"].kind == "modifier"


def test_tsv_without_required_columns_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "hcpcs_2025_oct_codes.tsv"
    path.write_text("code\ttitle\nJ1611\tx\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="missing columns"):
        read_hcpcs_tsv(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no HCPCS file"):
        load_hcpcs(tmp_path)
