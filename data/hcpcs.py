"""HCPCS Level II (CMS): procedure/supply codes and modifiers.

Reads the derived TSV (`hcpcs/hcpcs_2025_oct_codes.tsv`: code, kind, long_description, short_description)
or the raw CMS "ANWEB" CSV export, whose first column joins the code, a 5-digit sequence number and a
record id (3/4: procedure and its continuation line; 7/8: modifier and its continuation line).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from medcode.data.code_table import CodeTable, compact_code
from medcode.data.errors import DatasetNotFoundError, InvalidInputError

logger = logging.getLogger(__name__)

NAME = "HCPCS"
_HCPCS_CODE = re.compile(r"^[A-V][0-9]{4}$")


def looks_like_hcpcs(code: str) -> bool:
    """A Level II procedure/supply code: a letter A-V and four digits (J1611)."""
    return bool(_HCPCS_CODE.match(compact_code(code)))


@dataclass(frozen=True, slots=True)
class HcpcsCode:
    code: str
    kind: str
    """"procedure" (procedures, supplies, drugs) or "modifier"."""
    title: str
    short_title: str

    @property
    def billable(self) -> bool:
        return self.kind == "procedure"


class HCPCS(CodeTable[HcpcsCode]):
    """One HCPCS Level II release."""

    name = NAME

    def __init__(self, codes: dict[str, HcpcsCode], release: str) -> None:
        self.release = release
        self.version = f"{NAME} {release}".strip()
        self._codes = codes

    def modifiers(self) -> list[HcpcsCode]:
        return [c for c in self._codes.values() if c.kind == "modifier"]


def read_hcpcs_tsv(path: Path) -> dict[str, HcpcsCode]:
    codes: dict[str, HcpcsCode] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {"code", "kind", "long_description"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidInputError(f"{path}: missing columns {', '.join(sorted(missing))}")
        for lineno, row in enumerate(reader, start=2):
            code = compact_code(row.get("code") or "")
            if not code:
                raise InvalidInputError(f"{path}:{lineno}: empty code")
            kind = (row.get("kind") or "procedure").strip() or "procedure"
            codes[code] = HcpcsCode(
                code=code,
                kind=kind,
                title=" ".join((row.get("long_description") or "").split()),
                short_title=" ".join((row.get("short_description") or "").split()),
            )
    return codes


def read_hcpcs_anweb_csv(path: Path) -> dict[str, HcpcsCode]:
    """The raw CMS ANWEB CSV: join continuation lines; only the code, kind and descriptions are trusted."""
    long_parts: dict[str, list[str]] = {}
    short: dict[str, str] = {}
    kinds: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for lineno, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            key = row[0].strip()
            if len(key) < 7 or not key[-6:].isdigit():
                raise InvalidInputError(f"{path}:{lineno}: first column {key!r} is not CODE+SEQNUM+RECID")
            code, record = key[:-6].upper(), key[-1]
            if record not in "3478":
                continue
            kinds.setdefault(code, "modifier" if record in "78" else "procedure")
            long_parts.setdefault(code, []).append((row[1] if len(row) > 1 else "").strip())
            if record in "37" and len(row) > 2:
                short[code] = row[2][:28].strip()
    return {
        code: HcpcsCode(code, kinds[code], " ".join(" ".join(parts).split()), short.get(code, ""))
        for code, parts in long_parts.items()
    }


def find_hcpcs_file(data_dir: Path) -> Path | None:
    folder = data_dir / "hcpcs" if (data_dir / "hcpcs").is_dir() else data_dir
    for pattern in ("hcpcs_*_codes.tsv", "HCPC*_ANWEB*.csv"):
        matches = sorted(folder.glob(pattern))
        if matches:
            return matches[-1]
    return None


def _release_of(path: Path) -> str:
    match = re.search(r"(20\d\d)[_-]?([A-Za-z]{3})?", path.name)
    if not match:
        return ""
    return " ".join(p for p in (match.group(2) or "", match.group(1)) if p).strip().title()


def load_hcpcs(data_dir: Path) -> HCPCS:
    """HCPCS from `data_dir/hcpcs/` (the derived TSV, or the raw ANWEB CSV) or from a file path."""
    path = data_dir if data_dir.is_file() else find_hcpcs_file(data_dir)
    if path is None:
        raise DatasetNotFoundError(f"no HCPCS file (hcpcs_*_codes.tsv or HCPC*_ANWEB.csv) under {data_dir}")
    codes = read_hcpcs_tsv(path) if path.suffix.lower() == ".tsv" else read_hcpcs_anweb_csv(path)
    hcpcs = HCPCS(codes, _release_of(path))
    logger.info("loaded %s: %d codes", hcpcs.version, len(hcpcs))
    return hcpcs
