"""The code knowledge candidate generation reads: per code its title, place in the hierarchy, and the
terms (titles, inclusion terms, index entries, ontology synonyms) that name it.

`load_catalog()` assembles it from the data package (ICD-10-CM tabular, the alphabetic index and the
Disease Ontology when present, ICD-10-PCS when present). Tests build small catalogs directly.
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

log = logging.getLogger(__name__)

CM = "ICD-10-CM"
PCS = "ICD-10-PCS"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    system: str
    code: str
    title: str
    billable: bool
    depth: int
    chapter: str
    parent: str | None = None

    @property
    def unspecified(self) -> bool:
        return "unspecified" in self.title.lower()


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
    knowledge = Knowledge()
    if data_root is None:
        return knowledge
    root = Path(data_root)
    if (root / "codiesp").is_dir() is False and root.name == "codiesp":
        root = root.parent
    for reader in (_index_terms, _do_terms, _pcs_rows):
        try:
            reader(root, knowledge)
        except Exception as exc:  # an optional source that fails must not take the model down
            log.warning("code catalog: %s unavailable under %s: %s", reader.__name__.strip("_"), root, exc)
    return knowledge


def _index_terms(root: Path, knowledge: Knowledge) -> None:
    from medcode.data.icd10cm_index import NAME, find_index_files, load_index

    files = find_index_files(root)
    if "index" not in files:
        return
    kinds = [k for k in ("index", "neoplasm") if k in files]
    seen: set[tuple[str, str]] = set()
    for term in load_index(root, kinds=kinds):
        code = term.code_prefix
        if not code:
            continue
        texts = [term.phrase]
        if term.nonessential:
            texts.append(f"{term.phrase} {term.nonessential.replace('(', ' ').replace(')', ' ')}")
        for text in texts:
            text = " ".join(text.split())
            if text and (text.lower(), code) not in seen:
                seen.add((text.lower(), code))
                knowledge.cm_terms.append((text, code, term.source))
    knowledge.versions.append(f"{NAME} {files['index'].stem}")


def _do_terms(root: Path, knowledge: Knowledge) -> None:
    from medcode.data.disease_ontology import find_do_folder, load_disease_ontology

    if find_do_folder(root) is None:
        return
    ontology = load_disease_ontology(root)
    knowledge.cm_terms.extend((text, code, "synonym") for text, code in ontology.pairs())
    knowledge.versions.append(ontology.version)


def _pcs_rows(root: Path, knowledge: Knowledge) -> None:
    found = pcs_rows(root)
    if found is not None:
        version, rows = found
        knowledge.pcs_rows = rows
        knowledge.versions.append(version)


PcsRows = tuple[str, list[tuple[str, str]]]
"""(version, [(code, title)]) for ICD-10-PCS: 7-character codes and the 4-character prefixes."""


@lru_cache(maxsize=4)
def load_catalog(data_root: Path | None = None) -> CodeCatalog:
    """ICD-10-CM from the installed tabular, plus what a datasets folder offers (index, Disease
    Ontology, ICD-10-PCS) when `data_root` is given."""
    return build_catalog(knowledge_from(data_root))


def build_catalog(knowledge: Knowledge | None = None) -> CodeCatalog:
    knowledge = knowledge or Knowledge()
    version, infos, terms = _cm_part()
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


def pcs_rows(root: Path) -> PcsRows | None:
    """ICD-10-PCS codes and 4-character prefixes with titles, from a datasets folder (None if absent)."""
    from medcode.data.icd10pcs import find_pcs_files, load_icd10pcs

    if find_pcs_files(Path(root))[0] is None:
        return None
    pcs = load_icd10pcs(Path(root))
    rows = list(pcs.items())
    for prefix in sorted({code[:4] for code, _ in rows}):
        rows.append((prefix, pcs.title(prefix) or ""))
    return pcs.version, rows


def code_set_version() -> str:
    """The ICD-10-CM version string results carry."""
    from medcode.data.icd10cm import VERSION

    return VERSION


Part = tuple[str, list[CodeInfo], list[Term]]


@lru_cache(maxsize=1)
def _cm_part() -> Part:
    from medcode.data.icd10cm import load_icd10cm

    code_set = load_icd10cm()
    infos: list[CodeInfo] = []
    terms: list[Term] = []
    for entry in code_set.entries():
        if entry.seventh_char is not None:
            continue  # 7th-character expansions are the rules' business, not retrieval's
        infos.append(
            CodeInfo(CM, entry.code, entry.title, entry.billable, entry.depth, entry.chapter, entry.parent)
        )
        terms.append(Term(CM, entry.code, entry.title, "title"))
        terms.extend(Term(CM, entry.code, text, "inclusion") for text in entry.inclusion_terms)
    return code_set.version, infos, terms
