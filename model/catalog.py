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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any, overload

import numpy as np

from medcode.data.codesystems import CodeInfo, CodeSets, PcsRows, load_code_sets
from medcode.data.icd10cm import ICD10CM, VERSION
from medcode.data.index_walk import IndexTree, build_tree

__all__ = [
    "CM",
    "PCS",
    "CodeCatalog",
    "CodeInfo",
    "Knowledge",
    "PcsRows",
    "Term",
    "TermColumns",
    "build_catalog",
    "term_columns",
]

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


class TermColumns(Sequence[Term]):
    """One system's names as three parallel columns (codes, texts, kinds); a `Term` is built on access, so
    a catalog read from a pack's columns never creates a quarter of a million records at load."""

    __slots__ = ("codes", "kinds", "system", "texts")

    def __init__(self, system: str, codes: list[str], texts: list[str], kinds: list[str]) -> None:
        self.system = system
        self.codes = codes
        self.texts = texts
        self.kinds = kinds

    @classmethod
    def of(cls, system: str, terms: Iterable[Term]) -> TermColumns:
        terms = list(terms)
        return cls(system, [t.code for t in terms], [t.text for t in terms], [t.kind for t in terms])

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, i: int) -> Term: ...
    @overload
    def __getitem__(self, i: slice) -> list[Term]: ...
    def __getitem__(self, i: int | slice) -> Term | list[Term]:
        if isinstance(i, slice):
            return [self[n] for n in range(*i.indices(len(self)))]
        return Term(self.system, self.codes[i], self.texts[i], self.kinds[i])

    def __iter__(self) -> Iterator[Term]:
        system = self.system
        for code, text, kind in zip(self.codes, self.texts, self.kinds, strict=True):
            yield Term(system, code, text, kind)


def term_columns(terms: Sequence[Term], system: str = "") -> TermColumns:
    """`terms` as columns (the same object when it already is)."""
    if isinstance(terms, TermColumns):
        return terms
    return TermColumns.of(system, terms)


class CodeCatalog:
    """Codes and their names, by system.

    Held as columns (one row per code, one column per `CodeInfo` field; each system's names as
    `TermColumns`); records are built on access. `CodeCatalog(infos, terms, version)` deduplicates names and
    takes the fingerprint; `from_columns` restores what `to_columns` gave, fingerprint included, without
    either (what a model pack stores: `model.pack.CATALOG_FILE`)."""

    def __init__(self, infos: Iterable[CodeInfo], terms: Iterable[Term], version: str) -> None:
        info: dict[tuple[str, str], CodeInfo] = {(i.system, i.code): i for i in infos}
        kept: dict[str, list[Term]] = defaultdict(list)
        seen: set[tuple[str, str, str]] = set()
        for term in terms:
            if (term.system, term.code) not in info or not term.text.strip():
                continue
            key = (term.system, term.code, term.text.lower())
            if key not in seen:
                seen.add(key)
                kept[term.system].append(term)
        digest = hashlib.sha256(version.encode())
        for system in sorted(kept):
            for term in kept[system]:
                digest.update(f"{term.system}\t{term.code}\t{term.kind}\t{term.text}\n".encode())
        rows = list(info.values())
        self._set(
            version,
            digest.hexdigest()[:16],
            [i.system for i in rows],
            [i.code for i in rows],
            [i.title for i in rows],
            [i.billable for i in rows],
            [i.depth for i in rows],
            [i.chapter for i in rows],
            [i.parent for i in rows],
            {system: TermColumns.of(system, names) for system, names in kept.items()},
        )

    def _set(
        self,
        version: str,
        fingerprint: str,
        systems: list[str],
        codes: list[str],
        titles: list[str],
        billable: list[bool],
        depth: list[int],
        chapter: list[str],
        parent: list[str | None],
        names: dict[str, TermColumns],
    ) -> None:
        self.version = version
        self.fingerprint = fingerprint
        self._system, self._code, self._title = systems, codes, titles
        self._billable, self._depth, self._chapter, self._parent = billable, depth, chapter, parent
        self._rows: dict[str, dict[str, int]] = {}
        start = 0
        for system, run in groupby(systems):  # rows come grouped by system: one dict update per group
            end = start + len(list(run))
            self._rows.setdefault(system, {}).update(zip(codes[start:end], range(start, end), strict=True))
            start = end
        self._names = names
        self._children: dict[tuple[str, str], list[str]] | None = None

    def _row(self, system: str, code: str) -> int | None:
        rows = self._rows.get(system)
        return rows.get(code) if rows is not None else None

    def info(self, system: str, code: str) -> CodeInfo | None:
        n = self._row(system, code)
        if n is None:
            return None
        return CodeInfo(
            system, code, self._title[n], self._billable[n], self._depth[n], self._chapter[n], self._parent[n]
        )

    def title(self, system: str, code: str) -> str:
        n = self._row(system, code)
        return self._title[n] if n is not None else ""

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        rows = self._rows.get(key[0])
        return rows is not None and key[1] in rows

    def systems(self) -> list[str]:
        return sorted(self._rows)

    def codes(self, system: str) -> list[str]:
        return list(self._rows.get(system, ()))

    def terms(self, system: str) -> list[Term]:
        return list(self.names(system))

    def names(self, system: str) -> TermColumns:
        """A system's names as columns (shared: do not change them)."""
        return self._names.get(system) or TermColumns(system, [], [], [])

    def children(self, system: str, code: str) -> list[str]:
        if self._children is None:
            children: dict[tuple[str, str], list[str]] = defaultdict(list)
            for s, c, parent in zip(self._system, self._code, self._parent, strict=True):
                if parent:
                    children[(s, parent)].append(c)
            self._children = dict(children)
        return list(self._children.get((system, code), ()))

    def ancestors(self, system: str, code: str) -> Iterator[str]:
        n = self._row(system, code)
        while n is not None:
            parent = self._parent[n]
            if not parent:
                return
            yield parent
            n = self._row(system, parent)

    def __len__(self) -> int:
        return len(self._code)

    # columns -----------------------------------------------------------------------------------------------
    def to_columns(self) -> dict[str, np.ndarray]:
        """The catalog as named numpy arrays (strings as one separator-joined UTF-8 column each), for
        `from_columns`. ValueError when a string holds the separator (no known code name does)."""
        systems = sorted({*self._rows, *self._names})
        system_no = {s: n for n, s in enumerate(systems)}
        name_systems = list(self._names)
        kinds = sorted({k for cols in self._names.values() for k in cols.kinds})
        kind_no = {k: n for n, k in enumerate(kinds)}
        term_rows: list[int] = []
        term_kinds: list[int] = []
        term_texts: list[str] = []
        for system in name_systems:
            cols = self._names[system]
            rows = self._rows[system]
            term_rows.extend(rows[c] for c in cols.codes)
            term_kinds.extend(kind_no[k] for k in cols.kinds)
            term_texts.extend(cols.texts)
        return {
            "format": np.asarray(COLUMNS_FORMAT),
            "version": np.asarray(self.version),
            "fingerprint": np.asarray(self.fingerprint),
            "systems": _joined(systems),
            "kinds": _joined(kinds),
            "row_system": np.asarray([system_no[s] for s in self._system], dtype=np.uint8),
            "code": _joined(self._code),
            "title": _joined(self._title),
            "billable": np.asarray(self._billable, dtype=bool),
            "depth": np.asarray(self._depth, dtype=np.int16),
            "chapter": _joined(self._chapter),
            "has_parent": np.asarray([p is not None for p in self._parent], dtype=bool),
            "parent": _joined([p or "" for p in self._parent]),
            "name_systems": np.asarray([system_no[s] for s in name_systems], dtype=np.uint8),
            "name_counts": np.asarray([len(self._names[s]) for s in name_systems], dtype=np.int64),
            "name_row": np.asarray(term_rows, dtype=np.int32),
            "name_kind": np.asarray(term_kinds, dtype=np.uint8),
            "name_text": _joined(term_texts),
        }

    @classmethod
    def from_columns(cls, data: Mapping[str, np.ndarray]) -> CodeCatalog:
        """The catalog `to_columns` gave (ValueError when the columns are of another format or do not fit
        together)."""
        if int(data["format"]) != COLUMNS_FORMAT:
            raise ValueError(f"catalog columns of format {int(data['format'])}, not {COLUMNS_FORMAT}")
        systems = _split(data["systems"])
        kinds = _split(data["kinds"])
        codes = _split(data["code"])
        n = len(codes)
        system_of = np.asarray(systems, dtype=object)[data["row_system"]]
        row_system: list[str] = system_of.tolist()
        has_parent = data["has_parent"].tolist()
        parents: list[str | None] = [
            p if has else None for p, has in zip(_split(data["parent"]), has_parent, strict=True)
        ]
        titles, chapters = _split(data["title"]), _split(data["chapter"])
        billable, depth = data["billable"].tolist(), data["depth"].tolist()
        if any(len(c) != n for c in (row_system, titles, billable, depth, chapters, parents)):
            raise ValueError("catalog columns of different lengths")
        texts = _split(data["name_text"])
        rows, kind_of = data["name_row"], data["name_kind"]
        if len(texts) != len(rows) or len(kind_of) != len(rows) or (len(rows) and rows.max() >= n):
            raise ValueError("catalog name columns of different lengths")
        term_codes = np.asarray(codes, dtype=object)[rows]
        term_kinds = np.asarray(kinds, dtype=object)[kind_of]
        names: dict[str, TermColumns] = {}
        start = 0
        for s, count in zip(data["name_systems"].tolist(), data["name_counts"].tolist(), strict=True):
            system, end = systems[s], start + count
            if not (system_of[rows[start:end]] == system).all():
                raise ValueError(f"catalog names of {system} point at codes of another system")
            names[system] = TermColumns(
                system, term_codes[start:end].tolist(), texts[start:end], term_kinds[start:end].tolist()
            )
            start = end
        if start != len(rows):
            raise ValueError("catalog name counts do not add up")
        catalog = cls.__new__(cls)
        catalog._set(
            str(data["version"]),
            str(data["fingerprint"]),
            row_system,
            codes,
            titles,
            billable,
            depth,
            chapters,
            parents,
            names,
        )
        return catalog


COLUMNS_FORMAT = 2
"""Bump when `CodeCatalog.to_columns` changes: columns of another format are not read (the catalog is built)."""
_SEP = "\x1f"


def _joined(strings: Sequence[str]) -> np.ndarray:
    if any(_SEP in s for s in strings):
        raise ValueError("a code name holds the column separator U+001F")
    # each string ends with the separator, so that no strings and one empty string differ
    return np.frombuffer(_SEP.join([*strings, ""]).encode("utf-8"), dtype=np.uint8)


def _split(column: np.ndarray) -> list[str]:
    return column.tobytes().decode("utf-8").split(_SEP)[:-1]


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
