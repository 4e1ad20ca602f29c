"""The ICD-10-CM Alphabetic Index as a synonym source: (term text, code) pairs.

Two formats:
- the flattened CSV of the FY2025 index (`icd10cm/fy2025_index/ICD10CM_2025_Index.csv`, columns
  RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code; rows in document order, level 0 is a main term and
  a row's parent is the nearest earlier row with a lower level), also used by the external-cause index;
- the CMS index XML (`ICD10CM.index` / letter / mainTerm / term[@level] with title (+ nemod), code, see,
  seeAlso), which is what CMS publishes every fiscal year.
The neoplasm and drug tables (CSV or XML with cells per column) give extra pairs ("malignant primary
neoplasm of abdomen" -> C76.2).

Codes keep the index's own form: a trailing "-" ("H31.40-") means the tabular must be consulted for the
remaining characters; `IndexTerm.code_prefix` drops it.
"""

from __future__ import annotations

import csv
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from medcode.data.errors import DatasetNotFoundError, InvalidInputError

logger = logging.getLogger(__name__)

NAME = "ICD-10-CM Index"
_CONNECTORS = frozenset({"with", "without", "in", "due to", "following", "of", "and", "after", "from"})
_NEC_NOS = re.compile(r"\b(NEC|NOS)\b")


@dataclass(frozen=True, slots=True)
class IndexTerm:
    """One index line: its path from the main term, and the code (or cross-reference) it gives."""

    path: tuple[str, ...]
    """Main term first, then each subterm: ("Diabetes, diabetic", "with", "chronic kidney disease")."""
    code: str | None
    see: str = ""
    see_also: str = ""
    nonessential: str = ""
    """Nonessential modifiers in parentheses, e.g. "(mellitus) (sugar)"."""
    source: str = "index"
    """"index", "external", "neoplasm" or "drug"."""
    text: str = ""
    """A ready-made phrase (table cells: "malignant primary neoplasm of abdomen"); else built from path."""
    column: str = ""
    """For a table cell, its column ("MalignantPrimary", "AdverseEffect", ...: NEOPLASM_COLUMNS, DRUG_COLUMNS)."""

    @property
    def level(self) -> int:
        return len(self.path) - 1

    @property
    def full_term(self) -> str:
        """The path joined as printed in the index: "Diabetes, diabetic, with, chronic kidney disease"."""
        return ", ".join(self.path)

    @property
    def phrase(self) -> str:
        return self.text or natural_phrase(self.path)

    @property
    def code_prefix(self) -> str | None:
        return self.code.rstrip("-").rstrip(".") if self.code else None


def natural_phrase(path: Iterable[str]) -> str:
    """A readable phrase from an index path: the main term's head word, then the subterms, without
    NEC/NOS ("Diabetes, diabetic" / "with" / "chronic kidney disease" -> "Diabetes with chronic kidney
    disease")."""
    parts = list(path)
    if not parts:
        return ""
    head = parts[0].split(",")[0].strip()
    words = [head]
    for part in parts[1:]:
        cleaned = _NEC_NOS.sub("", part).strip(" ,")
        if cleaned:
            words.append(cleaned)
    return " ".join(" ".join(words).split())


def pairs(terms: Iterable[IndexTerm], natural: bool = True) -> Iterator[tuple[str, str]]:
    """(term text, code) for every term that gives a code."""
    for term in terms:
        if term.code:
            yield (term.phrase if natural else term.full_term, term.code)


# ---------------------------------------------------------------------------------------------- CSV


def _clean_code(value: str) -> str | None:
    value = value.strip()
    if not value or value in {"--", "-"}:
        return None
    return value.upper()


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise DatasetNotFoundError(f"index file not found: {path}")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        yield from enumerate(reader, start=2)


_NOTE = re.compile(r"\s*note\s*:", re.IGNORECASE)


def _paths(path: Path) -> Iterator[tuple[int, dict[str, str], tuple[str, ...]]]:
    """Each row with its path, following the "nearest earlier row with a lower level" rule. A "Note: ..."
    row is a printed instruction, not a term: it is skipped and leaves the path as it was, so the rows
    after it stay below their term ("Failure, heart" has a note on heart failure stages at level 1 before
    its level-2 subterms "stage A" ... "systolic")."""
    stack: list[str] = []
    for lineno, row in _rows(path):
        try:
            level = int(row.get("Level") or 0)
        except ValueError:
            raise InvalidInputError(f"{path}:{lineno}: Level is not a number: {row.get('Level')!r}") from None
        if _NOTE.match(row.get("Term") or "") and level > 0:
            continue
        if level > len(stack):
            raise InvalidInputError(f"{path}:{lineno}: level {level} follows a row of level {len(stack) - 1}")
        del stack[level:]
        stack.append(" ".join((row.get("Term") or "").split()))
        yield lineno, row, tuple(stack)


def read_index_csv(path: Path, source: str = "index") -> list[IndexTerm]:
    """The flattened alphabetic index (or external-cause index) CSV."""
    return [
        IndexTerm(
            path=term_path,
            code=_clean_code(row.get("Code") or ""),
            see=(row.get("See") or "").strip(),
            see_also=(row.get("SeeAlso") or "").strip(),
            nonessential=(row.get("NonEssModif") or "").strip(),
            source=source,
        )
        for _, row, term_path in _paths(path)
    ]


NEOPLASM_COLUMNS = {
    "MalignantPrimary": "malignant primary neoplasm",
    "MalignantSecondary": "secondary malignant neoplasm",
    "CaInSitu": "carcinoma in situ",
    "Benign": "benign neoplasm",
    "UncertainBehavior": "neoplasm of uncertain behavior",
    "UnspecifiedBehavior": "neoplasm of unspecified behavior",
}
DRUG_COLUMNS = {
    "PoisoningAccidental": "poisoning by {}, accidental",
    "PoisoningIntentionalSelfHarm": "poisoning by {}, intentional self-harm",
    "PoisoningAssault": "poisoning by {}, assault",
    "PoisoningUndetermined": "poisoning by {}, undetermined",
    "AdverseEffect": "adverse effect of {}",
    "Underdosing": "underdosing of {}",
}


def _site(path: tuple[str, ...]) -> str:
    return natural_phrase(("", *path[1:])).strip() if len(path) > 1 else ""


def read_neoplasm_csv(path: Path) -> list[IndexTerm]:
    """The neoplasm table CSV: one term per (site, behaviour column) with a code."""
    return _table_terms(
        path, NEOPLASM_COLUMNS, "neoplasm", _site, lambda label, site: f"{label} of {site}" if site else label
    )


def read_drug_csv(path: Path) -> list[IndexTerm]:
    """The table of drugs and chemicals CSV: one term per (substance, intent column) with a code."""
    return _table_terms(
        path, DRUG_COLUMNS, "drug", natural_phrase, lambda template, substance: template.format(substance)
    )


def _table_terms(
    path: Path,
    columns: Mapping[str, str],
    source: str,
    subject_of: Callable[[tuple[str, ...]], str],
    text_of: Callable[[str, str], str],
) -> list[IndexTerm]:
    """One term per (row, column) of a code table CSV with a code in that cell; its text is
    `text_of(column label, subject)`, the subject (site, substance) named once per row from its path."""
    out: list[IndexTerm] = []
    for _, row, term_path in _paths(path):
        subject = subject_of(term_path)
        for column, label in columns.items():
            code = _clean_code(row.get(column) or "")
            if code:
                out.append(
                    IndexTerm(
                        path=term_path, code=code, source=source, text=text_of(label, subject), column=column
                    )
                )
    return out


# ---------------------------------------------------------------------------------------------- XML


def _title(node: ET.Element) -> tuple[str, str]:
    """(title text without nonessential modifiers, the modifiers)."""
    title = node.find("title")
    if title is None:
        return "", ""
    nemod = " ".join(" ".join(n.itertext()) for n in title.findall("nemod"))
    text = (title.text or "") + "".join(child.tail or "" for child in title)
    return " ".join(text.split()), " ".join(nemod.split())


def _child_text(node: ET.Element, tag: str) -> str:
    child = node.find(tag)
    return "" if child is None else " ".join("".join(child.itertext()).split())


def _walk_terms(node: ET.Element, parent: tuple[str, ...], source: str, out: list[IndexTerm]) -> None:
    title, nemod = _title(node)
    path = (*parent, title)
    code = _clean_code(node.findtext("code") or "")
    out.append(
        IndexTerm(
            path=path,
            code=code,
            see=_child_text(node, "see"),
            see_also=_child_text(node, "seeAlso"),
            nonessential=nemod,
            source=source,
        )
    )
    for child in node.findall("term"):
        _walk_terms(child, path, source, out)


def read_index_xml(path: Path, source: str = "index") -> list[IndexTerm]:
    """The CMS ICD-10-CM index XML (main index or external-cause index)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"index file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InvalidInputError(f"{path}: not valid XML ({exc})") from None
    out: list[IndexTerm] = []
    for main in root.iter("mainTerm"):
        _walk_terms(main, (), source, out)
    return out


def _table_phrase(source: str, column: int, term_path: tuple[str, ...]) -> str | None:
    """Phrase for a neoplasm/drug table cell; columns 2-7 follow the CMS table order."""
    if source == "neoplasm":
        labels = list(NEOPLASM_COLUMNS.values())
        if not 2 <= column <= len(labels) + 1:
            return None
        site = _site(term_path)
        label = labels[column - 2]
        return f"{label} of {site}" if site else label
    templates = list(DRUG_COLUMNS.values())
    if not 2 <= column <= len(templates) + 1:
        return None
    return templates[column - 2].format(natural_phrase(term_path))


def _table_column(source: str, column: int) -> str:
    """The CSV column name of a CMS table cell (columns 2-7 in the CMS order)."""
    names = list(NEOPLASM_COLUMNS if source == "neoplasm" else DRUG_COLUMNS)
    return names[column - 2] if 2 <= column <= len(names) + 1 else ""


def read_table_xml(path: Path, source: str) -> list[IndexTerm]:
    """The CMS neoplasm or drug table XML (mainTerm / term with a code cell per column 2-7)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"table file not found: {path}")
    root = ET.parse(path).getroot()
    out: list[IndexTerm] = []

    def walk(node: ET.Element, parent: tuple[str, ...]) -> None:
        title, _ = _title(node)
        term_path = (*parent, title)
        for cell in node.findall("cell"):
            code = _clean_code("".join(cell.itertext()))
            column = int(cell.get("col", "0") or 0)
            phrase = _table_phrase(source, column, term_path)
            if code and phrase:
                out.append(
                    IndexTerm(
                        path=term_path,
                        code=code,
                        source=source,
                        text=phrase,
                        column=_table_column(source, column),
                    )
                )
        for child in node.findall("term"):
            walk(child, term_path)

    for main in root.iter("mainTerm"):
        walk(main, ())
    return out


# ---------------------------------------------------------------------------------------------- discovery


def find_index_files(data_dir: Path) -> dict[str, Path]:
    """Index sources present under `data_dir` (the datasets root, `icd10cm/` or the index folder)."""
    folders = [
        data_dir,
        data_dir / "icd10cm",
        data_dir / "icd10cm" / "fy2025_index",
        data_dir / "fy2025_index",
    ]
    found: dict[str, Path] = {}
    patterns = {
        "index": ("icd10cm-index-*.xml", "icd10cm_index_*.xml", "ICD10CM_*_Index.csv"),
        "external": ("icd-10-cm-eindex-*.xml", "ICD10CM_*_ExternalIndex.csv"),
        "neoplasm": ("icd-10-cm-neoplasm-*.xml", "ICD10CM_*_neoplasms.csv"),
        "drug": ("icd-10-cm-drug-*.xml", "ICD10CM_*_Drugs.csv"),
    }
    for kind, globs in patterns.items():
        for folder in folders:
            if kind in found or not folder.is_dir():
                continue
            for pattern in globs:
                matches = sorted(folder.glob(pattern))
                if matches:
                    found[kind] = matches[-1]
                    break
    return found


def read_any(path: Path, kind: str) -> list[IndexTerm]:
    source = "external" if kind == "external" else kind
    if path.suffix.lower() == ".xml":
        if kind in ("neoplasm", "drug"):
            return read_table_xml(path, kind)
        return read_index_xml(path, source)
    if kind == "neoplasm":
        return read_neoplasm_csv(path)
    if kind == "drug":
        return read_drug_csv(path)
    return read_index_csv(path, source)


def load_index(data_dir: Path, kinds: Iterable[str] = ("index",)) -> list[IndexTerm]:
    """Index terms of the requested kinds ("index", "external", "neoplasm", "drug") found under data_dir."""
    files = find_index_files(data_dir)
    wanted = list(kinds)
    if "index" in wanted and "index" not in files:
        raise DatasetNotFoundError(f"no ICD-10-CM alphabetic index (CSV or XML) under {data_dir}")
    terms: list[IndexTerm] = []
    for kind in wanted:
        if kind in files:
            terms.extend(read_any(files[kind], kind))
    logger.info(
        "loaded %d ICD-10-CM index terms (%s)", len(terms), ", ".join(k for k in wanted if k in files)
    )
    return terms
