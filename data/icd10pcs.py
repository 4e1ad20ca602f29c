"""ICD-10-PCS: the valid code list ("CODE title" per line) and the tables XML (pcsTable / axis / label).

Codes are 7 characters, upper case, without a dot. The tables give a meaning to each character position,
so partial codes (the 4-character prefixes CodiEsp uses) get a readable title too.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from medcode.data.code_table import CodeSet
from medcode.data.errors import DatasetNotFoundError, InvalidInputError

logger = logging.getLogger(__name__)

NAME = "ICD-10-PCS"
_PCS_CHARS = re.compile(r"^[0-9A-HJ-NP-Z]{1,7}$")
"""PCS uses digits and letters except I and O."""


def normalize_pcs(code: str) -> str:
    """ICD-10-PCS form: upper case, no dots or spaces ("bw03zzz" -> "BW03ZZZ"; "bw03" stays partial)."""
    return re.sub(r"[\s.\-]", "", code).upper()


def looks_like_pcs(code: str) -> bool:
    return bool(_PCS_CHARS.match(normalize_pcs(code)))


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _year_of(path: Path, default: int | None = None) -> int | None:
    years = re.findall(r"(?<!\d)(20\d\d)(?!\d)", path.name)
    return int(years[-1]) if years else default


# ---------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True, slots=True)
class PcsAxisValue:
    position: int
    """1..7: the character position in the code."""
    axis: str
    """Axis title: Section, Body System, Operation, Body Part, Approach, Device, Qualifier, ..."""
    char: str
    label: str


@dataclass
class PcsTables:
    """Meanings of characters by position: positions 1-3 per table, 4-7 per table row."""

    fiscal_year: int | None
    # (prefix, position, char) -> value; prefix: the previous characters for positions 1-4, the first four
    # (table + body part) for positions 5-7, since a table's rows give those axes per body part.
    _values: dict[tuple[str, int, str], PcsAxisValue] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    """Operation definitions by 3-character table prefix."""

    def add(self, prefix: str, value: PcsAxisValue) -> None:
        """`prefix`: the characters before the position for positions 1-4; table + body part for 5-7."""
        self._values.setdefault((prefix, value.position, value.char), value)

    @staticmethod
    def _key_prefix(code: str, pos: int) -> str:
        return code[: pos - 1] if pos <= 4 else code[:4]

    def axes(self, code: str) -> list[PcsAxisValue]:
        """The meaning of each character of a (full or partial) code, as far as the tables know it."""
        code = normalize_pcs(code)
        out: list[PcsAxisValue] = []
        for pos, char in enumerate(code, start=1):
            value = self._values.get((self._key_prefix(code, pos), pos, char))
            if value is None:
                break
            out.append(value)
        return out

    def describe(self, code: str) -> str:
        """A readable title from the axis labels: "Imaging, Anatomical Regions, Plain Radiography, Chest"."""
        return ", ".join(v.label for v in self.axes(code))


def parse_pcs_tables(path: Path) -> PcsTables:
    """Parse the CMS ICD-10-PCS tables XML (plain or .gz)."""
    with _open_text(path) as handle:
        root = ET.parse(handle).getroot()
    year_text = (root.findtext("version") or "").strip()
    tables = PcsTables(fiscal_year=int(year_text) if year_text.isdigit() else _year_of(path))
    for table in root.iter("pcsTable"):
        head: dict[int, tuple[str, str, str]] = {}
        for axis in table.findall("axis"):
            pos = int(axis.get("pos", "0"))
            label = axis.find("label")
            if label is None:
                continue
            head[pos] = (
                axis.findtext("title") or "",
                label.get("code", ""),
                " ".join((label.text or "").split()),
            )
            if pos == 3 and axis.findtext("definition"):
                definition = " ".join((axis.findtext("definition") or "").split())
                prefix = "".join(head[p][1] for p in sorted(head))
                tables.definitions[prefix] = definition
        prefix = "".join(head[p][1] for p in sorted(head))
        for pos, (title, char, label_text) in sorted(head.items()):
            tables.add(prefix[: pos - 1], PcsAxisValue(pos, title, char, label_text))
        for row in table.findall("pcsRow"):
            values = [
                PcsAxisValue(
                    int(axis.get("pos", "0")),
                    axis.findtext("title") or "",
                    label.get("code", ""),
                    " ".join((label.text or "").split()),
                )
                for axis in row.findall("axis")
                for label in axis.findall("label")
            ]
            body_parts = [v.char for v in values if v.position == 4]
            for value in values:
                if value.position == 4:
                    tables.add(prefix, value)
                else:
                    for body_part in body_parts:
                        tables.add(prefix + body_part, value)
    return tables


# ---------------------------------------------------------------------------------------------- code set


@dataclass(frozen=True, slots=True)
class PcsCode:
    code: str
    title: str
    billable: bool
    """True for a valid 7-character code; False for a partial code (a prefix)."""


class ICD10PCS(CodeSet[PcsCode]):
    """The ICD-10-PCS code set of one fiscal year, optionally with the tables for partial codes: its
    members are the valid 7-character codes, `get` also answers partial codes the tables describe."""

    name = NAME

    def __init__(
        self, titles: dict[str, str], fiscal_year: int | None, tables: PcsTables | None = None
    ) -> None:
        self.fiscal_year = fiscal_year
        self.version = f"{NAME} {fiscal_year}" if fiscal_year else NAME
        self._codes: dict[str, str] = titles
        self._sorted = sorted(titles)
        self.tables = tables

    normalize = staticmethod(normalize_pcs)

    def is_prefix(self, partial: str) -> bool:
        """True when some valid code starts with `partial` (e.g. the 4-character "BW03")."""
        partial = normalize_pcs(partial)
        if not partial:
            return False
        i = bisect.bisect_left(self._sorted, partial)
        return i < len(self._sorted) and self._sorted[i].startswith(partial)

    def is_known(self, code: str) -> bool:
        """A valid full code, or a partial code that prefixes valid codes."""
        code = normalize_pcs(code)
        return code in self._codes or (len(code) < 7 and self.is_prefix(code))

    def codes_with_prefix(self, partial: str) -> list[str]:
        partial = normalize_pcs(partial)
        i = bisect.bisect_left(self._sorted, partial)
        out: list[str] = []
        while i < len(self._sorted) and self._sorted[i].startswith(partial):
            out.append(self._sorted[i])
            i += 1
        return out

    def title(self, code: str) -> str | None:
        code = normalize_pcs(code)
        if code in self._codes:
            return self._codes[code]
        if len(code) < 7 and self.is_prefix(code):
            return self.tables.describe(code) if self.tables is not None else ""
        return None

    def get(self, code: str) -> PcsCode | None:
        code = normalize_pcs(code)
        title = self.title(code)
        if title is None:
            return None
        return PcsCode(code=code, title=title, billable=code in self._codes)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._codes.items())


def read_pcs_codes(path: Path) -> dict[str, str]:
    """Read a code list file: one "CODE title" per line (the CMS order file's short form)."""
    titles: dict[str, str] = {}
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            code, _, title = line.strip().partition(" ")
            if not re.fullmatch(r"[0-9A-HJ-NP-Z]{7}", code):
                raise InvalidInputError(
                    f"{path}:{lineno}: expected a 7-character ICD-10-PCS code, got {code!r}"
                )
            titles[code] = title.strip()
    return titles


def find_pcs_files(data_dir: Path) -> tuple[Path | None, Path | None]:
    """(latest code list, latest tables XML) under `data_dir/icd10pcs` (or `data_dir` itself)."""
    folder = data_dir / "icd10pcs" if (data_dir / "icd10pcs").is_dir() else data_dir
    lists = sorted(folder.glob("icd10pcs-codes-*.txt*"), key=lambda p: _year_of(p, 0) or 0)
    tables = sorted(folder.glob("icd10pcs_tables_*.xml*"), key=lambda p: _year_of(p, 0) or 0)
    return (lists[-1] if lists else None, tables[-1] if tables else None)


def load_icd10pcs(data_dir: Path, with_tables: bool = True) -> ICD10PCS:
    """Load ICD-10-PCS from a data folder holding `icd10pcs/icd10pcs-codes-YYYY.txt` (+ tables XML)."""
    codes_file, tables_file = find_pcs_files(data_dir)
    if codes_file is None:
        raise DatasetNotFoundError(f"no ICD-10-PCS code list (icd10pcs-codes-YYYY.txt) under {data_dir}")
    titles = read_pcs_codes(codes_file)
    tables = parse_pcs_tables(tables_file) if (with_tables and tables_file is not None) else None
    pcs = ICD10PCS(titles, _year_of(codes_file), tables)
    logger.info("loaded %s: %d codes (tables: %s)", pcs.version, len(pcs), tables is not None)
    return pcs
