"""Candidate generation's view of the code knowledge: per system, the codes and the terms (titles,
inclusion terms, index entries, ontology synonyms) that name them, with a fingerprint.

A thin adapter over `data.codesystems.CodeSets` (the one code-knowledge API), kept because retrieval needs
another shape than look-up: a flat list of names per system to index, and `Knowledge`, the plain-data part
read from the datasets folder that a trained model pack carries so that loading it never reads that
folder. `CodeInfo` is the API's own record. `load_catalog()` assembles it from a datasets folder; tests
build small catalogs directly.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from medcode.data.codesystems import CodeInfo, CodeSets, PcsRows, load_code_sets
from medcode.data.icd10cm import ICD10CM, VERSION
from medcode.data.index_walk import IndexTree, build_tree

__all__ = ["CM", "PCS", "CodeCatalog", "CodeInfo", "Knowledge", "PcsRows", "Term", "build_catalog"]

log = logging.getLogger(__name__)

CM = "ICD-10-CM"
PCS = "ICD-10-PCS"


@dataclass(frozen=True, slots=True)
class Term:
    """A name of a code: its title, an inclusion term, an index entry, a synonym."""

    system: str
    code: str
    text: str
    kind: str


class CodeCatalog:
    """Codes and their names, by system."""

    def __init__(self, infos: Iterable[CodeInfo], terms: Iterable[Term], version: str) -> None:
        self.version = version
        self._info: dict[tuple[str, str], CodeInfo] = {(i.system, i.code): i for i in infos}
        self._terms: dict[str, list[Term]] = defaultdict(list)
        seen: set[tuple[str, str, str]] = set()
        for term in terms:
            if (term.system, term.code) not in self._info or not term.text.strip():
                continue
            key = (term.system, term.code, term.text.lower())
            if key not in seen:
                seen.add(key)
                self._terms[term.system].append(term)
        self._children: dict[tuple[str, str], list[str]] = defaultdict(list)
        for info in self._info.values():
            if info.parent:
                self._children[(info.system, info.parent)].append(info.code)
        digest = hashlib.sha256(version.encode())
        for system in sorted(self._terms):
            for term in self._terms[system]:
                digest.update(f"{term.system}\t{term.code}\t{term.kind}\t{term.text}\n".encode())
        self.fingerprint = digest.hexdigest()[:16]

    def info(self, system: str, code: str) -> CodeInfo | None:
        return self._info.get((system, code))

    def title(self, system: str, code: str) -> str:
        info = self._info.get((system, code))
        return info.title if info else ""

    def __contains__(self, key: object) -> bool:
        return key in self._info

    def systems(self) -> list[str]:
        return sorted({s for s, _ in self._info})

    def codes(self, system: str) -> list[str]:
        return [c for s, c in self._info if s == system]

    def terms(self, system: str) -> list[Term]:
        return list(self._terms.get(system, ()))

    def children(self, system: str, code: str) -> list[str]:
        return list(self._children.get((system, code), ()))

    def ancestors(self, system: str, code: str) -> Iterator[str]:
        info = self._info.get((system, code))
        while info is not None and info.parent:
            yield info.parent
            info = self._info.get((system, info.parent))

    def __len__(self) -> int:
        return len(self._info)


# ---------------------------------------------------------------------------------------------- assembly


@dataclass
class Knowledge:
    """The optional name sources that live in the datasets folder rather than in a package: the
    alphabetic index and neoplasm table, Disease Ontology synonyms, and ICD-10-PCS. Plain data, so a
    trained model pack can carry the exact knowledge it was trained with."""

    versions: list[str] = field(default_factory=list)
    cm_terms: list[tuple[str, str, str]] = field(default_factory=list)
    """(text, code, kind) naming ICD-10-CM codes."""
    pcs_rows: list[tuple[str, str]] = field(default_factory=list)
    """(code, title) of ICD-10-PCS codes and 4-character prefixes."""
    index_tree: IndexTree | None = None
    """The Alphabetic Index as a tree for the index walk (a pack keeps it in its own file:
    `model.pack.INDEX_TREE_FILE`); None without an index or in a pack saved before it was kept."""

    def to_json(self) -> dict[str, Any]:
        return {"versions": self.versions, "cm_terms": self.cm_terms, "pcs_rows": self.pcs_rows}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Knowledge:
        return cls(
            versions=[str(v) for v in data.get("versions", [])],
            cm_terms=[(str(a), str(b), str(c)) for a, b, c in data.get("cm_terms", [])],
            pcs_rows=[(str(a), str(b)) for a, b in data.get("pcs_rows", [])],
        )


def knowledge_from(data_root: Path | None) -> Knowledge:
    """Read every optional source present under a datasets folder (missing ones are skipped)."""
    if data_root is None:
        return Knowledge()
    root = Path(data_root)
    if (root / "codiesp").is_dir() is False and root.name == "codiesp":
        root = root.parent
    return knowledge_of(load_code_sets(root))


def knowledge_of(code_sets: CodeSets) -> Knowledge:
    """The index and neoplasm-table terms, Disease Ontology synonyms and ICD-10-PCS rows the code sets hold."""
    knowledge = Knowledge()
    for reader in (_index_terms, _index_tree, _do_terms, _pcs_rows):
        try:
            reader(code_sets, knowledge)
        except Exception as exc:  # an optional source that fails must not take the model down
            log.warning(
                "code catalog: %s unavailable under %s: %s",
                reader.__name__.strip("_"),
                code_sets.data_dir,
                exc,
            )
    return knowledge


_INDEX_SOURCES = ("index", "neoplasm")
"""The index parts that name diagnoses (the external-cause index and the drug table are left out)."""


def _index_terms(code_sets: CodeSets, knowledge: Knowledge) -> None:
    version = code_sets.index_version
    if version is None:
        return
    seen: set[tuple[str, str]] = set()
    for term in code_sets.index_terms:
        code = term.code_prefix
        if not code or term.source not in _INDEX_SOURCES:
            continue
        texts = [term.phrase]
        if term.nonessential:
            texts.append(f"{term.phrase} {term.nonessential.replace('(', ' ').replace(')', ' ')}")
        for text in texts:
            text = " ".join(text.split())
            if text and (text.lower(), code) not in seen:
                seen.add((text.lower(), code))
                knowledge.cm_terms.append((text, code, term.source))
    knowledge.versions.append(version)


def _index_tree(code_sets: CodeSets, knowledge: Knowledge) -> None:
    version = code_sets.index_version
    if version is not None:
        knowledge.index_tree = build_tree(code_sets.index_terms, version)


def _do_terms(code_sets: CodeSets, knowledge: Knowledge) -> None:
    ontology = code_sets.disease_ontology
    if ontology is None:
        return
    knowledge.cm_terms.extend((text, code, "synonym") for text, code in ontology.pairs())
    knowledge.versions.append(ontology.version)


def _pcs_rows(code_sets: CodeSets, knowledge: Knowledge) -> None:
    found = code_sets.pcs_rows()
    if found is not None:
        version, rows = found
        knowledge.pcs_rows = rows
        knowledge.versions.append(version)


@lru_cache(maxsize=4)
def load_catalog(data_root: Path | None = None) -> CodeCatalog:
    """ICD-10-CM from the installed tabular, plus what a datasets folder offers (index, Disease
    Ontology, ICD-10-PCS) when `data_root` is given."""
    return build_catalog(knowledge_from(data_root))


def build_catalog(knowledge: Knowledge | None = None, icd10cm: ICD10CM | None = None) -> CodeCatalog:
    """The catalog of an ICD-10-CM release (default: the packaged one) and the knowledge a pack carries."""
    knowledge = knowledge or Knowledge()
    version, infos, terms = _cm_part(icd10cm or CodeSets().icd10cm)
    infos = list(infos)
    terms = list(terms)
    terms.extend(Term(CM, code, text, kind) for text, code, kind in knowledge.cm_terms)
    for code, title in knowledge.pcs_rows:
        infos.append(
            CodeInfo(
                PCS, code, title, len(code) == 7, len(code), code[0], code[:4] if len(code) > 4 else None
            )
        )
        if title:
            terms.append(Term(PCS, code, title, "title"))
    catalog = CodeCatalog(infos, terms, " + ".join([version, *knowledge.versions]))
    log.info("code catalog %s: %d codes, fingerprint %s", catalog.version, len(catalog), catalog.fingerprint)
    return catalog


def code_set_version() -> str:
    """The ICD-10-CM version string results carry."""
    return VERSION


Part = tuple[str, list[CodeInfo], list[Term]]


@lru_cache(maxsize=2)
def _cm_part(icd: ICD10CM) -> Part:
    infos: list[CodeInfo] = []
    terms: list[Term] = []
    for entry in icd.entries():
        if entry.seventh_char is not None:
            continue  # 7th-character expansions are the rules' business, not retrieval's
        infos.append(
            CodeInfo(CM, entry.code, entry.title, entry.billable, entry.depth, entry.chapter, entry.parent)
        )
        terms.append(Term(CM, entry.code, entry.title, "title"))
        terms.extend(Term(CM, entry.code, text, "inclusion") for text in entry.inclusion_terms)
    return icd.version, infos, terms
