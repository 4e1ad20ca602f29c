"""CPT: a loader for a user-supplied, licensed CPT file, and medcode's built-in E/M office-visit set.

CPT descriptors are AMA-copyrighted, so medcode ships none. A user who holds a licence points
MEDCODE_CPT_FILE at a CSV or TSV with a code column and a descriptor column (a header row naming them
is optional). The built-in set (`resources/em_office_visits.json`) describes the office-visit codes
99202-99205 and 99211-99215 in the project's own words, with the patient status, the medical decision
making (MDM) level and the total-time range of each.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from medcode.data.code_table import CodeTable, compact_code
from medcode.data.errors import DatasetNotFoundError, InvalidInputError

logger = logging.getLogger(__name__)

NAME = "CPT"
EM_RESOURCE = "em_office_visits.json"
_CPT_CODE = re.compile(r"^[0-9]{4}[0-9FTU]$")
_CODE_HEADERS = ("code", "cpt", "cpt_code", "cpt code", "hcpcs", "procedure_code")
_DESCRIPTOR_HEADERS = (
    "descriptor",
    "description",
    "long_description",
    "long descriptor",
    "long_descriptor",
    "title",
    "consumer friendly descriptor",
    "short_description",
)


def looks_like_cpt(code: str) -> bool:
    """Five characters: four digits then a digit, or F (category II), T (category III), U (PLA)."""
    return bool(_CPT_CODE.match(compact_code(code)))


@dataclass(frozen=True, slots=True)
class EmVisit:
    """One office-visit E/M code as medcode describes it."""

    code: str
    patient: str
    """"new" or "established"."""
    mdm: str
    """"straightforward", "low", "moderate", "high" or "not required"."""
    time_min: int | None
    time_max: int | None
    description: str


@dataclass(frozen=True, slots=True)
class CptCode:
    code: str
    title: str
    source: str
    """"licensed file" or "medcode E/M set"."""
    billable: bool = True


def load_em_office_visits() -> list[EmVisit]:
    """The built-in E/M office-visit set (data file shipped with the package)."""
    text = (resources.files("medcode.data") / "resources" / EM_RESOURCE).read_text(encoding="utf-8")
    payload = json.loads(text)
    return [
        EmVisit(
            code=item["code"],
            patient=item["patient"],
            mdm=item["mdm"],
            time_min=item.get("time_min"),
            time_max=item.get("time_max"),
            description=item["description"],
        )
        for item in payload["codes"]
    ]


def em_visit_for(patient: str, mdm: str | None = None, minutes: int | None = None) -> EmVisit | None:
    """The office-visit code for a new/established patient at an MDM level, or by total minutes
    (the higher of the two levels when both are given; None when neither reaches a level)."""
    visits = [v for v in load_em_office_visits() if v.patient == patient and v.time_min is not None]
    best: EmVisit | None = None
    for visit in visits:
        by_mdm = mdm is not None and visit.mdm == mdm
        by_time = minutes is not None and visit.time_min is not None and minutes >= visit.time_min
        if (by_mdm or by_time) and (best is None or visit.code > best.code):
            best = visit
    return best


def _sniff_dialect(path: Path, sample: str) -> type[csv.Dialect] | csv.Dialect:
    if path.suffix.lower() in (".tsv", ".tab"):
        return csv.excel_tab
    if path.suffix.lower() == ".csv":
        return csv.excel
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        return csv.excel_tab if "\t" in sample else csv.excel


def _columns(header: list[str], path: Path) -> tuple[int, int]:
    names = [h.strip().lower() for h in header]
    code_col = next((names.index(h) for h in _CODE_HEADERS if h in names), None)
    desc_col = next((names.index(h) for h in _DESCRIPTOR_HEADERS if h in names), None)
    if code_col is None or desc_col is None:
        raise InvalidInputError(
            f"{path}: header needs a code column ({', '.join(_CODE_HEADERS[:3])}) and a descriptor column "
            f"({', '.join(_DESCRIPTOR_HEADERS[:3])}); found {', '.join(header)}"
        )
    return code_col, desc_col


def read_cpt_file(path: Path) -> dict[str, str]:
    """code -> descriptor from a licensed CPT CSV/TSV (header optional: then code, descriptor)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"CPT file not found: {path} (MEDCODE_CPT_FILE)")
    text = path.read_text(encoding="utf-8-sig")
    dialect = _sniff_dialect(path, text[:4096])
    rows = list(csv.reader(text.splitlines(), dialect))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InvalidInputError(f"{path}: the CPT file is empty")
    start, code_col, desc_col = 0, 0, 1
    if not looks_like_cpt(rows[0][0] if rows[0] else ""):
        code_col, desc_col = _columns(rows[0], path)
        start = 1
    codes: dict[str, str] = {}
    for offset, row in enumerate(rows[start:], start=start + 1):
        if len(row) <= max(code_col, desc_col):
            raise InvalidInputError(f"{path}:{offset}: expected a code and a descriptor, got {row!r}")
        code = compact_code(row[code_col])
        if not looks_like_cpt(code):
            raise InvalidInputError(f"{path}:{offset}: {row[code_col]!r} is not a CPT code")
        codes[code] = " ".join(row[desc_col].split())
    return codes


def _year_of(path: Path) -> str:
    match = re.search(r"(?<!\d)(20\d\d)(?!\d)", path.name)
    return match.group(1) if match else ""


class CPT(CodeTable[CptCode]):
    """CPT codes: the user's licensed file when given, plus the built-in E/M office-visit set."""

    name = NAME

    def __init__(self, licensed: dict[str, str], version: str, em: list[EmVisit]) -> None:
        self.version = version
        self.licensed = bool(licensed)
        self.em_visits = {v.code: v for v in em}
        self._codes: dict[str, CptCode] = {
            v.code: CptCode(v.code, v.description, "medcode E/M set") for v in em
        }
        for code, title in licensed.items():
            self._codes[code] = CptCode(code, title, "licensed file")


def load_cpt(cpt_file: Path | None = None) -> CPT:
    """The built-in E/M set, plus the licensed CPT file when one is given."""
    em = load_em_office_visits()
    if cpt_file is None:
        return CPT({}, "CPT E/M office visits (medcode)", em)
    licensed = read_cpt_file(cpt_file)
    year = _year_of(cpt_file)
    cpt = CPT(licensed, f"{NAME} {year}".strip() if year else f"{NAME} (user file)", em)
    logger.info("loaded %s: %d licensed codes + %d E/M office visits", cpt.version, len(licensed), len(em))
    return cpt
