from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.cpt import em_visit_for, load_cpt, load_em_office_visits, read_cpt_file
from medcode.data.errors import DatasetNotFoundError, InvalidInputError


def test_builtin_em_set_covers_office_visits() -> None:
    visits = {v.code: v for v in load_em_office_visits()}
    assert sorted(visits) == ["99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"]
    assert visits["99204"].patient == "new" and visits["99204"].mdm == "moderate"
    assert (visits["99213"].time_min, visits["99213"].time_max) == (20, 29)
    assert visits["99211"].time_min is None


def test_em_visit_by_mdm_or_time() -> None:
    assert em_visit_for("established", mdm="low").code == "99213"  # type: ignore[union-attr]
    assert em_visit_for("new", minutes=50).code == "99204"  # type: ignore[union-attr]
    assert em_visit_for("established", mdm="low", minutes=45).code == "99215"  # type: ignore[union-attr]
    assert em_visit_for("new", minutes=5) is None


def test_without_a_licensed_file_only_em_codes(tmp_path: Path) -> None:
    cpt = load_cpt()
    assert not cpt.licensed
    assert "99214" in cpt and "99999" not in cpt
    assert cpt["99214"].source == "medcode E/M set"


def test_licensed_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "cpt_2026.csv"
    path.write_text('cpt_code,long_descriptor\n10060,"Drainage of abscess, simple"\n99214,Licensed text\n')
    cpt = load_cpt(path)
    assert cpt.version == "CPT 2026" and cpt.licensed
    assert cpt["10060"].title == "Drainage of abscess, simple"
    assert cpt["99214"].title == "Licensed text"  # the licensed descriptor wins
    assert cpt["99214"].source == "licensed file"


def test_licensed_tsv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "cpt.tsv"
    path.write_text("0001U\tPLA test\n1234F\tCategory II measure\n")
    assert read_cpt_file(path) == {"0001U": "PLA test", "1234F": "Category II measure"}


def test_bad_cpt_rows_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "cpt.csv"
    path.write_text("code,descriptor\nABCDE,not a code\n")
    with pytest.raises(InvalidInputError, match=r"cpt\.csv:2: 'ABCDE' is not a CPT code"):
        read_cpt_file(path)
    path.write_text("name,text\n10060,x\n")
    with pytest.raises(InvalidInputError, match="header needs a code column"):
        read_cpt_file(path)
    with pytest.raises(DatasetNotFoundError, match="MEDCODE_CPT_FILE"):
        read_cpt_file(tmp_path / "absent.csv")
