"""Code systems as the transformer needs them: label identity, titles, and the billable retrieval set.

Every function reads the code knowledge it is given (`data.codesystems.CodeSets`): at training time the
code sets of the training data folder, so procedure labels get their ICD-10-PCS / HCPCS titles; a saved
pack carries its labels with their titles, so loading it needs no data folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from medcode.data.codesystems import CodeSets
from medcode.data.cpt import looks_like_cpt
from medcode.data.hcpcs import looks_like_hcpcs
from medcode.data.icd10cm import ICD10CM
from medcode.data.types import Encounter, Task

log = logging.getLogger(__name__)

_PROCEDURE_SYSTEMS = ("ICD-10-PCS", "HCPCS", "CPT")


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


def system_of(task: Task, code: str, code_sets: CodeSets) -> str:
    """The code system of a gold code: ICD-10-CM for diagnoses; PCS, HCPCS or CPT for procedures (the
    system that knows the code, else the one its shape suggests, else ICD-10-PCS)."""
    if task == "diagnosis":
        return "ICD-10-CM"
    for info in code_sets.lookup_all(code):
        if info.system in _PROCEDURE_SYSTEMS:
            return info.system
    bare = code.replace(".", "").upper()
    if looks_like_cpt(bare):
        return "CPT"
    if looks_like_hcpcs(bare):
        return "HCPCS"
    return "ICD-10-PCS"


def title_of(system: str, code: str, code_sets: CodeSets) -> str:
    """The official title of a code, or '' when the code system does not know it (e.g. a partial PCS code
    without the PCS tables)."""
    return code_sets.title(code, system)


def label_text(label: Label) -> str:
    """What the encoder reads for a label: its title, or the bare code when no title is known."""
    return label.title or f"{label.system} code {label.code}"


def gold_labels(encounter: Encounter, code_sets: CodeSets) -> list[Label]:
    """The encounter's gold codes as labels (without titles: identity is system + code)."""
    if encounter.gold is None:
        return []
    out = [Label("ICD-10-CM", c) for c in encounter.gold.diagnosis]
    out += [Label(system_of("procedure", c, code_sets), c) for c in encounter.gold.procedure]
    return out


def billable_diagnosis_codes(
    icd: ICD10CM, restrict: list[str] | None = None, skip_later_encounters: bool = False
) -> list[tuple[str, str]]:
    """(code, title) of every billable code of an ICD-10-CM release, or of the `restrict` codes it knows.

    `skip_later_encounters` leaves out 7th-character variants for subsequent encounters and sequelae
    (about 39k of the 75k billable codes).
    """
    if restrict is not None:
        known = (icd.get(code) for code in restrict)
        return [(entry.code, entry.title) for entry in known if entry is not None]
    out = []
    for code in icd.billable_codes():
        entry = icd[code]
        meaning = icd.seventh_meaning(entry).lower()
        if skip_later_encounters and ("subsequent" in meaning or "sequela" in meaning):
            continue
        out.append((code, entry.title))
    return out
