"""Code systems as the transformer needs them: label identity, titles, and the billable retrieval set."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medcode.data.codesystems import CodeInfo, CodeSets, load_code_sets
from medcode.data.errors import MedcodeError
from medcode.data.icd10cm import ICD10CM, CodeEntry, load_icd10cm
from medcode.data.types import Encounter, Task

log = logging.getLogger(__name__)

_PCS_RE = re.compile(r"^[0-9A-HJ-NP-Z]{3,7}$")
_HCPCS_RE = re.compile(r"^[A-V][0-9]{4}$")
_CPT_RE = re.compile(r"^[0-9]{4}[0-9FTU]$")


@dataclass(frozen=True, order=True)
class Label:
    """One code the model scores: its system, code and title (what the label query is built from)."""

    system: str
    code: str
    title: str = ""

    @property
    def task(self) -> Task:
        return "diagnosis" if self.system == "ICD-10-CM" else "procedure"

    def to_json(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "title": self.title}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Label:
        return cls(system=str(data["system"]), code=str(data["code"]), title=str(data.get("title", "")))


def system_of(task: Task, code: str) -> str:
    """The code system of a gold code: ICD-10-CM for diagnoses; PCS, HCPCS or CPT for procedures."""
    if task == "diagnosis":
        return "ICD-10-CM"
    info = _lookup(code, None)
    if info is not None and info.system in ("ICD-10-PCS", "HCPCS", "CPT"):
        return str(info.system)
    bare = code.replace(".", "").upper()
    if _CPT_RE.match(bare):
        return "CPT"
    if _HCPCS_RE.match(bare):
        return "HCPCS"
    return "ICD-10-PCS"


def code_set_version() -> str:
    return str(_icd10cm().version)


def title_of(system: str, code: str) -> str:
    """The official title of a code, or '' when the code system does not know it (e.g. a partial PCS code)."""
    if system == "ICD-10-CM":
        entry = _icd10cm().get(code)
        if entry is not None:
            return str(entry.title)
    info = _lookup(code, system)
    return info.title if info is not None else ""


def label_text(label: Label) -> str:
    """What the encoder reads for a label: its title, or the bare code when no title is known."""
    return label.title or f"{label.system} code {label.code}"


def gold_labels(encounter: Encounter) -> list[Label]:
    """The encounter's gold codes as labels (without titles: identity is system + code)."""
    if encounter.gold is None:
        return []
    out = [Label("ICD-10-CM", c) for c in encounter.gold.diagnosis]
    out += [Label(system_of("procedure", c), c) for c in encounter.gold.procedure]
    return out


def billable_diagnosis_codes(
    restrict: list[str] | None = None, skip_later_encounters: bool = False
) -> list[tuple[str, str]]:
    """(code, title) of every billable ICD-10-CM code, or of the `restrict` codes the code set knows.

    `skip_later_encounters` leaves out 7th-character variants for subsequent encounters and sequelae
    (about 39k of the 75k billable codes).
    """
    icd = _icd10cm()
    if restrict is not None:
        out = []
        for code in restrict:
            entry = icd.get(code)
            if entry is not None:
                out.append((str(entry.code), str(entry.title)))
        return out
    out = []
    for code in icd.billable_codes():
        entry = icd[code]
        if skip_later_encounters and _later_encounter(entry):
            continue
        out.append((str(code), str(entry.title)))
    return out


def _later_encounter(entry: CodeEntry) -> bool:
    chars = entry.seventh_chars
    if len(entry.code.replace(".", "")) != 7 or not chars:
        return False
    meaning = str(chars.get(entry.code[-1], "")).lower()
    return "subsequent" in meaning or "sequela" in meaning


def _icd10cm() -> ICD10CM:
    return load_icd10cm()


@lru_cache(maxsize=1)
def _code_sets() -> CodeSets:
    return load_code_sets()


def _lookup(code: str, system: str | None) -> CodeInfo | None:
    try:
        return _code_sets().lookup(code, system)
    except (MedcodeError, KeyError, ValueError):  # an unknown code simply has no title
        return None
