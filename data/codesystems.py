"""The one code-knowledge API: `CodeSets`, every code system behind one object.

    code_sets = load_code_sets(data_dir, cpt_file)
    code_sets.lookup("E11.22")            # CodeInfo(system, code, title, billable, depth, chapter, parent)
    code_sets.status("S52.521")           # "needs_7th"; "billable", "header", "partial", "unknown"
    code_sets.notes("E11.22", "use_additional")   # own, ancestors', block's and chapter's notes
    code_sets.parents("E11.22"), code_sets.children("E11.2"), code_sets.category("E11.22")
    code_sets.resolve("S01.20X")          # placeholder X without its 7th character -> S01.20
    code_sets.pcs_validity("BW03")        # "partial"; "valid", "invalid", "unchecked"

ICD-10-CM always (it ships in the simple-icd-10-cm package; tests pass their own release as `icd10cm`).
ICD-10-PCS, HCPCS, the ICD-10-CM index and Disease Ontology synonyms when the datasets folder holds them;
CPT from a licensed file when one is named, and always the built-in E/M office-visit set. Optional systems
load on first use. Each system's own module (`data.icd10cm`, `data.icd10pcs`, `data.hcpcs`, `data.cpt`) is
its loader; model code (catalog, rules, transformer) and the service (code look-up, search, finalize
checks) read code knowledge through this object.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from medcode.data.cpt import CPT, CptCode, load_cpt, looks_like_cpt
from medcode.data.disease_ontology import DiseaseOntology, find_do_folder, load_disease_ontology
from medcode.data.errors import UnknownCodeError
from medcode.data.hcpcs import HCPCS, HcpcsCode, find_hcpcs_file, load_hcpcs, looks_like_hcpcs
from medcode.data.icd10cm import ICD10CM, load_icd10cm, looks_like_icd10cm
from medcode.data.icd10cm import CodeEntry as ICD10CMEntry
from medcode.data.icd10cm_index import NAME as INDEX_NAME
from medcode.data.icd10cm_index import IndexTerm, find_index_files, load_index
from medcode.data.icd10pcs import (
    ICD10PCS,
    PcsCode,
    find_pcs_files,
    load_icd10pcs,
    looks_like_pcs,
    normalize_pcs,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SYSTEMS",
    "CodeInfo",
    "CodeSets",
    "CodeStatus",
    "PcsRows",
    "PcsValidity",
    "get_code_sets",
    "load_code_sets",
    "normalize_pcs",
]

SYSTEMS = ("ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT")
_ALIASES = {
    "icd10cm": "ICD-10-CM",
    "icd-10-cm": "ICD-10-CM",
    "cm": "ICD-10-CM",
    "icd10pcs": "ICD-10-PCS",
    "icd-10-pcs": "ICD-10-PCS",
    "pcs": "ICD-10-PCS",
    "hcpcs": "HCPCS",
    "cpt": "CPT",
}


def canonical_system(system: str) -> str:
    """ "icd10cm", "ICD-10-CM", "pcs", ... -> the canonical system name; ValueError when unknown."""
    key = system.strip().lower().replace("_", "-")
    name = _ALIASES.get(key) or _ALIASES.get(key.replace("-", ""))
    if name is None:
        raise ValueError(f"unknown code system {system!r}; expected one of {', '.join(SYSTEMS)}")
    return name


CodeStatus = Literal["billable", "header", "needs_7th", "partial", "not_billable", "unknown"]
"""Whether a code can stand on a claim as written: "billable"; "header" (an ICD-10-CM category or
subcategory with codes below it); "needs_7th" (complete but for its 7th character, a placeholder X
included); "partial" (an ICD-10-PCS table prefix, shorter than 7 characters); "not_billable" (an HCPCS
modifier); "unknown" (no loaded system knows it)."""

PcsValidity = Literal["valid", "partial", "invalid", "unchecked"]
"""An ICD-10-PCS code: "valid" (a code of the release), "partial" (a prefix of valid codes, e.g. the
4-character "BW03"), "invalid", or "unchecked" (PCS shape, but no PCS release is loaded)."""

PcsRows = tuple[str, list[tuple[str, str]]]
"""(version, [(code, title)]) for ICD-10-PCS: 7-character codes, then the 4-character prefixes."""


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One code of one system. `depth`, `chapter` and `parent` place ICD-10-CM codes in the tabular (a
    category has depth 1) and ICD-10-PCS codes under their 4-character prefix; other systems leave them."""

    system: str
    code: str
    title: str
    billable: bool
    depth: int = 0
    chapter: str = ""
    parent: str | None = None

    @property
    def unspecified(self) -> bool:
        return "unspecified" in self.title.lower()


class CodeSets:
    """The code systems available on this installation.

    `data_dir`: the datasets folder (ICD-10-PCS, HCPCS, the ICD-10-CM index, Disease Ontology); `cpt_file`:
    a licensed CPT file; `icd10cm`: another ICD-10-CM release than the packaged one (tests, a new year).
    """

    def __init__(
        self, data_dir: Path | None = None, cpt_file: Path | None = None, *, icd10cm: ICD10CM | None = None
    ) -> None:
        self.data_dir = data_dir
        self.cpt_file = cpt_file
        self._icd10cm = icd10cm

    # systems --------------------------------------------------------------------------------------------
    @property
    def icd10cm(self) -> ICD10CM:
        return self._icd10cm if self._icd10cm is not None else load_icd10cm()

    @cached_property
    def icd10pcs(self) -> ICD10PCS | None:
        if self.data_dir is None or find_pcs_files(self.data_dir)[0] is None:
            return None
        return load_icd10pcs(self.data_dir)

    @cached_property
    def hcpcs(self) -> HCPCS | None:
        if self.data_dir is None or find_hcpcs_file(self.data_dir) is None:
            return None
        return load_hcpcs(self.data_dir)

    @cached_property
    def cpt(self) -> CPT:
        return load_cpt(self.cpt_file)

    @cached_property
    def index_terms(self) -> list[IndexTerm]:
        """ICD-10-CM alphabetic index terms (main, external-cause, neoplasm and drug tables); [] if absent."""
        if self.data_dir is None or "index" not in find_index_files(self.data_dir):
            return []
        return load_index(self.data_dir, ("index", "external", "neoplasm", "drug"))

    @property
    def index_version(self) -> str | None:
        """ "ICD-10-CM Index <file>" of the alphabetic index present, None when there is none."""
        if self.data_dir is None:
            return None
        files = find_index_files(self.data_dir)
        return f"{INDEX_NAME} {files['index'].stem}" if "index" in files else None

    @cached_property
    def disease_ontology(self) -> DiseaseOntology | None:
        if self.data_dir is None or find_do_folder(self.data_dir) is None:
            return None
        return load_disease_ontology(self.data_dir)

    def available(self) -> dict[str, str]:
        """System name -> version, for the systems present."""
        out = {"ICD-10-CM": self.icd10cm.version}
        if self.icd10pcs is not None:
            out["ICD-10-PCS"] = self.icd10pcs.version
        if self.hcpcs is not None:
            out["HCPCS"] = self.hcpcs.version
        out["CPT"] = self.cpt.version
        return out

    @property
    def version(self) -> str:
        """The diagnosis code-set version results carry ("ICD-10-CM 2026")."""
        return self.icd10cm.version

    # lookup ---------------------------------------------------------------------------------------------
    def _lookup_in(self, system: str, code: str) -> CodeInfo | None:
        found: ICD10CMEntry | PcsCode | HcpcsCode | CptCode | None
        if system == "ICD-10-CM":
            found = self.icd10cm.get(code)
        elif system == "ICD-10-PCS":
            found = self.icd10pcs.get(code) if self.icd10pcs is not None else None
        elif system == "HCPCS":
            found = self.hcpcs.get(code) if self.hcpcs is not None else None
        else:
            found = self.cpt.get(code)
        if found is None:
            return None
        if isinstance(found, ICD10CMEntry):
            return CodeInfo(
                system, found.code, found.title, found.billable, found.depth, found.chapter, found.parent
            )
        if isinstance(found, PcsCode):
            code = found.code
            return CodeInfo(system, code, found.title, found.billable, len(code), code[0], _pcs_parent(code))
        return CodeInfo(system, found.code, found.title, found.billable)

    def candidate_systems(self, code: str) -> list[str]:
        """Systems whose code shape fits `code`, most likely first (a dotted code is ICD-10-CM)."""
        text = code.strip()
        if "." in text:
            return ["ICD-10-CM"]
        shapes = [
            ("ICD-10-CM", looks_like_icd10cm(text)),
            ("ICD-10-PCS", looks_like_pcs(text) and len(normalize_pcs(text)) <= 7),
            ("HCPCS", looks_like_hcpcs(text) or bool(re.fullmatch(r"[A-Z0-9]{2}", text.upper()))),
            ("CPT", looks_like_cpt(text)),
        ]
        return [name for name, fits in shapes if fits]

    def lookup(self, code: str, system: str | None = None) -> CodeInfo | None:
        """The code in `system`, or in the first system (by shape) that knows it; None when unknown."""
        if not code or not code.strip():
            return None
        systems = [canonical_system(system)] if system else self.candidate_systems(code)
        for name in systems:
            info = self._lookup_in(name, code)
            if info is not None:
                return info
        return None

    def lookup_all(self, code: str) -> list[CodeInfo]:
        """Every system that knows the code (a few HCPCS and ICD-10-CM codes share a shape)."""
        found = (self._lookup_in(name, code) for name in self.candidate_systems(code))
        return [info for info in found if info is not None]

    def require(self, code: str, system: str | None = None) -> CodeInfo:
        info = self.lookup(code, system)
        if info is None:
            raise UnknownCodeError(code, canonical_system(system) if system else "medical")
        return info

    # questions ------------------------------------------------------------------------------------------
    def title(self, code: str, system: str | None = None) -> str:
        """The official title ("" when no system knows the code; a partial PCS code's axis labels)."""
        info = self.lookup(code, system)
        return info.title if info is not None else ""

    def status(self, code: str, system: str | None = None) -> CodeStatus:
        """Whether the code can stand on a claim as written (see `CodeStatus`); without `system`, the
        system that knows the code, else the one its shape suggests."""
        name = canonical_system(system) if system else self._system_of(code)
        if name == "ICD-10-CM":
            entry = self.icd10cm.resolve(code)
            if entry is None:
                return "unknown"
            if self.icd10cm.needs_seventh(entry):
                return "needs_7th"
            return "billable" if entry.billable and self.icd10cm.get(code) is not None else "header"
        if name == "ICD-10-PCS":
            compact = normalize_pcs(code)
            if len(compact) < 7 and self.pcs_validity(compact) in ("partial", "unchecked"):
                return "partial"
            return "billable" if self.pcs_validity(compact) == "valid" else "unknown"
        info = self.lookup(code, name) if name is not None else None
        if info is None:
            return "unknown"
        return "billable" if info.billable else "not_billable"

    def _system_of(self, code: str) -> str | None:
        info = self.lookup(code)
        if info is not None:
            return info.system
        shapes = self.candidate_systems(code)
        return shapes[0] if shapes else None

    def billable(self, code: str, system: str | None = None) -> bool | None:
        """Whether a code can stand on a claim as it is: a billable ICD-10-CM code, a 7-character ICD-10-PCS
        code, a known HCPCS/CPT code; an ICD-10-PCS code of another length never is (a known prefix or not,
        as the review's finalize checks refuse it); None when no loaded system knows it."""
        status = self.status(code, system)
        if status == "unknown" and system is not None and canonical_system(system) == "ICD-10-PCS":
            return False if len(normalize_pcs(code)) != 7 else None
        return None if status == "unknown" else status == "billable"

    # ICD-10-CM hierarchy, notes and 7th characters (the tabular's knowledge) ----------------------------
    def resolve(self, code: str) -> ICD10CMEntry | None:
        """The ICD-10-CM entry of a code; a placeholder X without its 7th character ("S01.20X") -> S01.20."""
        return self.icd10cm.resolve(code)

    def parents(self, code: str) -> list[str]:
        """ICD-10-CM ancestors, nearest first ([] for an unknown code)."""
        entry = self.icd10cm.resolve(code)
        return [] if entry is None else self.icd10cm.parents(entry.code)

    def children(self, code: str) -> list[str]:
        """Direct ICD-10-CM children (7th-character expansions included); [] for an unknown code."""
        entry = self.icd10cm.resolve(code)
        return [] if entry is None else self.icd10cm.children(entry.code)

    def category(self, code: str) -> str | None:
        """The 3-character ICD-10-CM category of a known code."""
        entry = self.icd10cm.resolve(code)
        return None if entry is None else entry.category

    def notes(self, code: str, kind: str) -> list[tuple[str, str]]:
        """(where, text) of every note of `kind` (Excludes1/2, code first, use additional, code also) that
        applies to an ICD-10-CM code: its own, its ancestors', its block's and chapter's."""
        entry = self.icd10cm.resolve(code)
        return [] if entry is None else self.icd10cm.applicable_notes(entry.code, kind)

    def seventh_characters(self, code: str) -> Mapping[str, str]:
        """7th character -> meaning applying at an ICD-10-CM code ({} when it takes none)."""
        entry = self.icd10cm.resolve(code)
        return {} if entry is None else entry.seventh_chars

    def needs_seventh(self, code: str) -> bool:
        entry = self.icd10cm.resolve(code)
        return entry is not None and self.icd10cm.needs_seventh(entry)

    # ICD-10-PCS -----------------------------------------------------------------------------------------
    def pcs_validity(self, code: str) -> PcsValidity:
        """Validity of a full or partial ICD-10-PCS code (see `PcsValidity`)."""
        compact = normalize_pcs(code)
        if not compact or len(compact) > 7 or not looks_like_pcs(compact):
            return "invalid"
        if self.icd10pcs is None:
            return "unchecked"
        if compact in self.icd10pcs:
            return "valid"
        return "partial" if len(compact) < 7 and self.icd10pcs.is_prefix(compact) else "invalid"

    def pcs_rows(self) -> PcsRows | None:
        """ICD-10-PCS codes and their 4-character prefixes with titles (None without a PCS release)."""
        pcs = self.icd10pcs
        if pcs is None:
            return None
        rows = list(pcs.items())
        for prefix in sorted({code[:4] for code, _ in rows}):
            rows.append((prefix, pcs.title(prefix) or ""))
        return pcs.version, rows


def _pcs_parent(code: str) -> str | None:
    return code[:4] if len(code) > 4 else None


def load_code_sets(data_dir: Path | None = None, cpt_file: Path | None = None) -> CodeSets:
    """Code sets from the datasets folder `data_dir` and a licensed `cpt_file` (each optional), built once
    per process for each pair; without a folder only the packaged ICD-10-CM tabular is known."""
    return _cached_code_sets(data_dir, cpt_file)


@lru_cache(maxsize=4)
def _cached_code_sets(data_dir: Path | None, cpt_file: Path | None) -> CodeSets:
    return CodeSets(data_dir, cpt_file)


get_code_sets = load_code_sets
