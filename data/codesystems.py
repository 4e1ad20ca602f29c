"""All code systems behind one facade: `load_code_sets().lookup(code, system=None)`.

ICD-10-CM always (it ships in the simple-icd-10-cm package). ICD-10-PCS, HCPCS, the ICD-10-CM index and
Disease Ontology synonyms when `MEDCODE_DATA_DIR` holds them; CPT from `MEDCODE_CPT_FILE` when set, and
always the built-in E/M office-visit set. Optional systems load on first use.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from medcode.data.cpt import CPT, CptCode, load_cpt, looks_like_cpt
from medcode.data.disease_ontology import DiseaseOntology, find_do_folder, load_disease_ontology
from medcode.data.errors import UnknownCodeError
from medcode.data.hcpcs import HCPCS, HcpcsCode, find_hcpcs_file, load_hcpcs, looks_like_hcpcs
from medcode.data.icd10cm import ICD10CM, load_icd10cm, looks_like_icd10cm
from medcode.data.icd10cm import CodeEntry as ICD10CMEntry
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

__all__ = ["SYSTEMS", "CodeInfo", "CodeSets", "get_code_sets", "load_code_sets", "normalize_pcs"]

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


@dataclass(frozen=True, slots=True)
class CodeInfo:
    system: str
    code: str
    title: str
    billable: bool


class CodeSets:
    """The code systems available on this installation."""

    def __init__(self, data_dir: Path | None = None, cpt_file: Path | None = None) -> None:
        self.data_dir = data_dir
        self.cpt_file = cpt_file

    # systems --------------------------------------------------------------------------------------------
    @property
    def icd10cm(self) -> ICD10CM:
        return load_icd10cm()

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
        return None if found is None else CodeInfo(system, found.code, found.title, found.billable)

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


def load_code_sets(data_dir: Path | None = None, cpt_file: Path | None = None) -> CodeSets:
    """Code sets from the datasets folder `data_dir` and a licensed `cpt_file` (each optional), built once
    per process for each pair; without a folder only the packaged ICD-10-CM tabular is known."""
    return _cached_code_sets(data_dir, cpt_file)


@lru_cache(maxsize=4)
def _cached_code_sets(data_dir: Path | None, cpt_file: Path | None) -> CodeSets:
    return CodeSets(data_dir, cpt_file)


get_code_sets = load_code_sets
