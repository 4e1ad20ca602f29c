"""Human Disease Ontology synonyms with their ICD-10-CM cross-references (CC0).

Two files under `disease-ontology/`:
- `do_subsets_union_terms.tsv`: doid, name, synonym, synonym_scope, icd10cm_xrefs ("E00.1|E03.1");
  one row per (term, name or synonym);
- `ICD10inDO.tsv`: id, label, xrefs ("ICD10CM:J04, ICD10CM:J37.1"), quoted; covers every ICD10CM-linked
  term, so it adds the labels the subsets lack.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.icd10cm import normalize_code

logger = logging.getLogger(__name__)

NAME = "Disease Ontology"
UNION_FILE = "do_subsets_union_terms.tsv"
XREF_FILE = "ICD10inDO.tsv"


@dataclass(frozen=True, slots=True)
class DoTerm:
    doid: str
    text: str
    """The term's name or one of its synonyms."""
    scope: str
    """"NAME", or the synonym scope: EXACT, RELATED, NARROW, BROAD."""
    icd10cm: tuple[str, ...]
    """ICD-10-CM codes (dotted form) the term is cross-referenced to."""


def _codes(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        value = value.strip().strip('"')
        if value.upper().startswith("ICD10CM:"):
            value = value.split(":", 1)[1]
        if value:
            code = normalize_code(value)
            if code not in out:
                out.append(code)
    return tuple(out)


def read_union_terms(path: Path) -> list[DoTerm]:
    terms: list[DoTerm] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not {"doid", "name"} <= set(reader.fieldnames or []):
            raise InvalidInputError(
                f"{path}: expected columns doid, name, synonym, synonym_scope, icd10cm_xrefs"
            )
        for row in reader:
            synonym = (row.get("synonym") or "").strip()
            text = synonym or (row.get("name") or "").strip()
            if not text:
                continue
            terms.append(
                DoTerm(
                    doid=(row.get("doid") or "").strip(),
                    text=text,
                    scope=(row.get("synonym_scope") or "NAME").strip() or "NAME",
                    icd10cm=_codes(re.split(r"[|,]", row.get("icd10cm_xrefs") or "")),
                )
            )
    return terms


def read_icd10_in_do(path: Path) -> list[DoTerm]:
    terms: list[DoTerm] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not {"id", "label", "xrefs"} <= set(reader.fieldnames or []):
            raise InvalidInputError(f"{path}: expected columns id, label, xrefs")
        for row in reader:
            label = (row.get("label") or "").strip().strip('"')
            codes = _codes((row.get("xrefs") or "").split(","))
            if label and codes:
                terms.append(DoTerm((row.get("id") or "").strip().strip('"'), label, "NAME", codes))
    return terms


class DiseaseOntology:
    """DO terms (names and synonyms) that carry ICD-10-CM cross-references."""

    name = NAME

    def __init__(self, terms: list[DoTerm], version: str = "") -> None:
        self.version = f"{NAME} {version}".strip()
        self.terms = terms

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self) -> Iterator[DoTerm]:
        return iter(self.terms)

    def pairs(self, scopes: Iterable[str] = ("NAME", "EXACT")) -> Iterator[tuple[str, str]]:
        """(term text, ICD-10-CM code) for terms of the given scopes with a cross-reference."""
        wanted = {s.upper() for s in scopes}
        seen: set[tuple[str, str]] = set()
        for term in self.terms:
            if term.scope.upper() not in wanted:
                continue
            for code in term.icd10cm:
                key = (term.text.lower(), code)
                if key not in seen:
                    seen.add(key)
                    yield term.text, code


def _release(folder: Path) -> str:
    """The release date named by the OBO subsets archive, if present ("2026-07-31")."""
    for archive in sorted(folder.glob("do_subsets_obo_*.tar.gz"), reverse=True):
        match = re.search(r"\d{4}-\d{2}-\d{2}", archive.name)
        if match:
            return match.group(0)
    return ""


def find_do_folder(data_dir: Path) -> Path | None:
    for folder in (data_dir / "disease-ontology", data_dir):
        if (folder / UNION_FILE).is_file() or (folder / XREF_FILE).is_file():
            return folder
    return None


def load_disease_ontology(data_dir: Path) -> DiseaseOntology:
    """DO synonyms with ICD-10-CM xrefs; each DOID's ICD10inDO codes fill in terms of the subsets lacking them."""
    folder = find_do_folder(data_dir)
    if folder is None:
        raise DatasetNotFoundError(f"no Disease Ontology files ({UNION_FILE}, {XREF_FILE}) under {data_dir}")
    union = read_union_terms(folder / UNION_FILE) if (folder / UNION_FILE).is_file() else []
    labelled = read_icd10_in_do(folder / XREF_FILE) if (folder / XREF_FILE).is_file() else []
    codes_of = {t.doid: t.icd10cm for t in labelled}
    terms = [
        t if t.icd10cm or t.doid not in codes_of else DoTerm(t.doid, t.text, t.scope, codes_of[t.doid])
        for t in union
    ]
    known = {(t.doid, t.text.lower()) for t in terms}
    terms.extend(t for t in labelled if (t.doid, t.text.lower()) not in known)
    ontology = DiseaseOntology(terms, _release(folder))
    logger.info("loaded %s: %d terms", ontology.version, len(ontology))
    return ontology
