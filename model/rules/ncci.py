"""NCCI procedure-to-procedure (PTP) edits for CPT/HCPCS pairs, from a user-supplied CMS edit file.

CMS publishes the PTP edits as tables of (column 1 code, column 2 code, effective date, deletion date,
modifier indicator). medcode ships none; the user points `MEDCODE_NCCI_FILE` (or `ncci_file`) at a
tab- or comma-separated export with a header naming those columns (preamble lines before the header are
skipped). When both codes of an active edit are suggested, column 1 stays; with modifier indicator 0 the
column 2 code moves to the candidates and the encounter routes ("ncci:COL1|COL2"); with indicator 1 a
modifier may allow both, so both stay with a warning; indicator 9 means the edit does not apply.

A file that is named but cannot be used (missing, unreadable, no such columns, bad rows) is an error
when the rules step is built (`NcciFileError`, one line naming the file): the edits are never skipped
silently.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.model.rules.state import RulesState

PROCEDURE_SYSTEMS = ("CPT", "HCPCS")


class NcciFileError(InvalidInputError):
    """The NCCI edit file (MEDCODE_NCCI_FILE) cannot be read as a PTP edit table."""


_COLUMNS = {
    "column1": ("column1", "column1code", "col1", "comprehensivecode", "column1comprehensivecode"),
    "column2": ("column2", "column2code", "col2", "componentcode", "column2componentcode"),
    "modifier": ("modifier", "modifierindicator", "modifierind", "modifier0notallowed1allowed9notapplicable"),
    "effective": ("effective", "effectivedate", "effdate"),
    "deletion": ("deletion", "deletiondate", "deletiondatenodata", "deldate"),
}


@dataclass(frozen=True)
class PtpEdit:
    column1: str
    column2: str
    modifier: str
    """'0' not allowed, '1' allowed with a modifier, '9' not applicable."""
    effective: dt.date | None
    deletion: dt.date | None

    def active_on(self, day: dt.date) -> bool:
        if self.effective is not None and day < self.effective:
            return False
        return self.deletion is None or day < self.deletion


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _header_map(row: list[str]) -> dict[str, int] | None:
    keys = [_key(c) for c in row]
    found: dict[str, int] = {}
    for column, names in _COLUMNS.items():
        for index, key in enumerate(keys):
            if key in names or any(key.startswith(n) for n in names if len(n) > 6):
                found.setdefault(column, index)
                break
    return found if {"column1", "column2", "modifier"} <= found.keys() else None


def _date(text: str, path: Path, line: int) -> dt.date | None:
    value = text.strip()
    if not value or value == "*" or value.lower() in ("none", "null", "na", "n/a"):
        return None
    for fmt in ("%Y%m%d", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise NcciFileError(
        f"NCCI edit file {path}:{line}: unreadable date {value!r} (expected YYYYMMDD, YYYY-MM-DD or MM/DD/YYYY)"
    )


def read_ncci_file(path: Path) -> list[PtpEdit]:
    """PTP edits from a CMS-style table (tab or comma separated, header row with the column names)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"NCCI edit file not found: {path} (MEDCODE_NCCI_FILE)")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise NcciFileError(f"NCCI edit file {path} cannot be read: {exc.strerror or exc}") from exc
    if "\x00" in text[:4096]:
        raise NcciFileError(
            f"NCCI edit file {path} is not a text table (export the CMS edits as tab- or comma-separated text)"
        )
    lines = text.splitlines()
    delimiter = "\t" if any("\t" in line for line in lines[:50]) else ","
    try:
        rows = list(csv.reader(lines, delimiter=delimiter))
    except csv.Error as exc:
        raise NcciFileError(f"NCCI edit file {path} is not a readable table: {exc}") from exc
    header_at, columns = None, None
    for index, row in enumerate(rows[:50]):
        columns = _header_map(row)
        if columns is not None:
            header_at = index
            break
    if header_at is None or columns is None:
        raise NcciFileError(
            f"NCCI edit file {path}: no header with column1, column2 and modifier indicator columns in "
            "the first 50 lines"
        )
    edits: list[PtpEdit] = []
    for offset, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(columns.values()):
            raise NcciFileError(
                f"NCCI edit file {path}:{offset}: expected {max(columns.values()) + 1} columns, got {len(row)}"
            )
        first, second = row[columns["column1"]].strip().upper(), row[columns["column2"]].strip().upper()
        if not first or not second:
            continue
        modifier = row[columns["modifier"]].strip() or "9"
        if modifier not in ("0", "1", "9"):
            raise NcciFileError(
                f"NCCI edit file {path}:{offset}: modifier indicator must be 0, 1 or 9, got {modifier!r}"
            )
        effective = _date(row[columns["effective"]], path, offset) if "effective" in columns else None
        deletion = _date(row[columns["deletion"]], path, offset) if "deletion" in columns else None
        edits.append(PtpEdit(first, second, modifier, effective, deletion))
    return edits


class NcciRule:
    name = "ncci"

    def __init__(self, edits: list[PtpEdit]) -> None:
        self.edits: dict[tuple[str, str], list[PtpEdit]] = {}
        for edit in edits:
            self.edits.setdefault((edit.column1, edit.column2), []).append(edit)

    @classmethod
    def from_file(cls, path: Path) -> NcciRule:
        return cls(read_ncci_file(path))

    def __call__(self, state: RulesState) -> None:
        day = _encounter_day(state.encounter.date)
        procedures = [c for c in state.codes if c.system in PROCEDURE_SYSTEMS]
        for first in procedures:
            for second in procedures:
                if first is second or not any(c is second for c in state.codes):
                    continue
                if not any(c is first for c in state.codes):
                    break
                active = [
                    e
                    for e in self.edits.get((first.code.upper(), second.code.upper()), ())
                    if e.active_on(day)
                ]
                if not active:
                    continue
                edit = active[-1]
                if edit.modifier == "9":
                    continue
                if edit.modifier == "1":
                    state.fire(
                        self.name,
                        [first, second],
                        f"NCCI edit {first.code}/{second.code}: billed together only with a modifier for a "
                        "distinct service (modifier indicator 1)",
                        warning={second.code: f"ncci:{first.code}:modifier"},
                    )
                    continue
                state.move_out(second)
                state.fire(
                    self.name,
                    [first, second],
                    f"NCCI edit {first.code}/{second.code}: {second.code} is a component of {first.code} and "
                    "is not billed with it (modifier indicator 0); kept column 1",
                    reason=f"ncci:{first.code}|{second.code}",
                    warning={first.code: f"ncci:{second.code}", second.code: f"ncci:{first.code}"},
                )


def _encounter_day(date: str | None) -> dt.date:
    if date:
        try:
            return dt.date.fromisoformat(date[:10])
        except ValueError:
            pass
    return dt.date.today()
