"""CodiEsp (CLEF eHealth 2020) reader: English text, D/P labels, CodiEsp-X evidence, background documents.

Layout of one split folder (train, dev or test):
    <split>/text_files_en/<articleID>.txt   English machine translation, one sentence per line
    <split>/text_files/<articleID>.txt      Spanish original (the X offsets index this text)
    <split>/<split>D.tsv                    articleID<TAB>code (diagnoses, lower-case CIE-10-ES)
    <split>/<split>P.tsv                    articleID<TAB>code (procedures)
    <split>/<split>X.tsv                    articleID<TAB>DIAGNOSTICO|PROCEDIMIENTO<TAB>code<TAB>evidence<TAB>spans

Codes are normalised to ICD-10-CM form ("n44.8" -> "N44.8") and ICD-10-PCS form ("bw03zzz" -> "BW03ZZZ";
4-character partial PCS codes stay partial). Codes the code sets do not know are kept in the gold labels
(the official evaluation counts them) and reported in a `CodiEspReport`.
"""

from __future__ import annotations

import csv
import logging
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.icd10cm import normalize_code
from medcode.data.icd10pcs import normalize_pcs
from medcode.data.types import Document, Encounter, Gold, Task

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
DOCUMENT_TYPE = "clinical_case"
X_LABELS: dict[str, Task] = {"DIAGNOSTICO": "diagnosis", "PROCEDIMIENTO": "procedure"}

CodeCheck = Callable[[str], bool]
"""Answers whether a normalised code is known to the code set (None: not checked)."""


@dataclass(frozen=True, slots=True)
class XRecord:
    """One CodiEsp-X row: a code with its evidence string and spans in the SPANISH text."""

    document_id: str
    task: Task
    code: str
    raw_code: str
    evidence: str
    spans: tuple[tuple[int, int], ...]


@dataclass
class CodiEspReport:
    """What a load found: counts, and every code the code sets did not know (kept in gold, not dropped)."""

    split: str
    documents: int = 0
    diagnosis_labels: int = 0
    procedure_labels: int = 0
    documents_with_diagnosis: int = 0
    documents_with_procedure: int = 0
    distinct_diagnosis: int = 0
    distinct_procedure: int = 0
    duplicate_labels: int = 0
    missing_diagnosis: Counter[str] = field(default_factory=Counter)
    """Normalised diagnosis code -> label count, for codes absent from ICD-10-CM."""
    missing_procedure: Counter[str] = field(default_factory=Counter)
    """Normalised procedure code -> label count, for codes absent from ICD-10-PCS (None checked: empty)."""
    procedure_checked: bool = False
    labels_without_text: Counter[str] = field(default_factory=Counter)
    """Article ids that have labels but no English text file (their labels are ignored)."""

    def summary(self) -> dict[str, object]:
        return {
            "split": self.split,
            "documents": self.documents,
            "diagnosis_labels": self.diagnosis_labels,
            "procedure_labels": self.procedure_labels,
            "distinct_diagnosis": self.distinct_diagnosis,
            "distinct_procedure": self.distinct_procedure,
            "missing_diagnosis_codes": len(self.missing_diagnosis),
            "missing_diagnosis_labels": sum(self.missing_diagnosis.values()),
            "missing_procedure_codes": len(self.missing_procedure) if self.procedure_checked else None,
            "missing_procedure_labels": sum(self.missing_procedure.values())
            if self.procedure_checked
            else None,
            "labels_without_text": sum(self.labels_without_text.values()),
        }


@dataclass
class CodiEspSplit:
    encounters: list[Encounter]
    report: CodiEspReport


# ---------------------------------------------------------------------------------------------- paths


def resolve_root(data_dir: Path) -> Path:
    """The CodiEsp folder: `data_dir` itself, or `data_dir/codiesp` when given the datasets root."""
    if (data_dir / "codiesp").is_dir() and not any((data_dir / s).is_dir() for s in SPLITS):
        return data_dir / "codiesp"
    return data_dir


def available_splits(data_dir: Path) -> list[str]:
    root = resolve_root(data_dir)
    return [s for s in SPLITS if (root / s / "text_files_en").is_dir()]


def split_dir(data_dir: Path, split: str) -> Path:
    root = resolve_root(data_dir)
    folder = root / split
    if split not in SPLITS:
        raise DatasetNotFoundError(f"unknown CodiEsp split {split!r}; expected one of {', '.join(SPLITS)}")
    if not (folder / "text_files_en").is_dir():
        present = ", ".join(available_splits(root)) or "none"
        raise DatasetNotFoundError(
            f"CodiEsp split {split!r} not found: {folder / 'text_files_en'} is not a folder "
            f"(splits present under {root}: {present})"
        )
    return folder


# ---------------------------------------------------------------------------------------------- readers


def read_label_file(path: Path) -> list[tuple[str, str]]:
    """(article id, raw code) rows of a D or P file; a missing file gives no rows."""
    if not path.is_file():
        return []
    rows: list[tuple[str, str]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise InvalidInputError(f"{path}:{lineno}: expected 'articleID<TAB>code', got {row!r}")
            rows.append((row[0].strip(), row[1].strip()))
    return rows


def _parse_spans(text: str, where: str) -> tuple[tuple[int, int], ...]:
    spans: list[tuple[int, int]] = []
    for part in text.split(";"):
        pieces = part.split()
        if len(pieces) != 2 or not all(p.isdigit() for p in pieces):
            raise InvalidInputError(f"{where}: bad span {part!r}; expected 'start end[;start end]'")
        spans.append((int(pieces[0]), int(pieces[1])))
    return tuple(spans)


def read_x_file(path: Path) -> list[XRecord]:
    """CodiEsp-X rows as typed records; offsets index the Spanish text in text_files/."""
    if not path.is_file():
        raise DatasetNotFoundError(f"CodiEsp-X file not found: {path}")
    records: list[XRecord] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            row = line.split("\t")
            where = f"{path}:{lineno}"
            if len(row) != 5:
                raise InvalidInputError(f"{where}: expected 5 tab-separated fields, got {len(row)}")
            doc_id, label, raw, evidence, spans = row
            task = X_LABELS.get(label.strip().upper())
            if task is None:
                raise InvalidInputError(f"{where}: label {label!r} is not DIAGNOSTICO or PROCEDIMIENTO")
            code = normalize_code(raw) if task == "diagnosis" else normalize_pcs(raw)
            records.append(
                XRecord(doc_id.strip(), task, code, raw.strip(), evidence, _parse_spans(spans, where))
            )
    return records


def read_x(data_dir: Path, split: str) -> list[XRecord]:
    folder = split_dir(data_dir, split)
    return read_x_file(folder / f"{split}X.tsv")


def read_spanish_text(data_dir: Path, split: str, document_id: str) -> str:
    path = split_dir(data_dir, split) / "text_files" / f"{document_id}.txt"
    if not path.is_file():
        raise DatasetNotFoundError(f"Spanish text not found: {path}")
    return path.read_text(encoding="utf-8")


def _read_texts(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}


def _gold_codes(
    rows: list[tuple[str, str]],
    normalize: Callable[[str], str],
    texts: dict[str, str],
    check: CodeCheck | None,
    missing: Counter[str],
    orphans: Counter[str],
) -> tuple[dict[str, list[str]], int, int]:
    """Article id -> normalised codes (first-seen order, deduplicated); (map, labels, duplicates)."""
    by_doc: dict[str, list[str]] = {}
    labels = duplicates = 0
    for doc_id, raw in rows:
        if doc_id not in texts:
            orphans[doc_id] += 1
            continue
        code = normalize(raw)
        codes = by_doc.setdefault(doc_id, [])
        if code in codes:
            duplicates += 1
            continue
        codes.append(code)
        labels += 1
        if check is not None and not check(code):
            missing[code] += 1
    return by_doc, labels, duplicates


def read_split(
    data_dir: Path,
    split: str,
    *,
    diagnosis_check: CodeCheck | None = None,
    procedure_check: CodeCheck | None = None,
) -> CodiEspSplit:
    """One split as encounters (one per article, English text, gold filled) plus a report."""
    folder = split_dir(data_dir, split)
    texts = _read_texts(folder / "text_files_en")
    report = CodiEspReport(split=split, documents=len(texts), procedure_checked=procedure_check is not None)
    diagnoses, report.diagnosis_labels, dup_d = _gold_codes(
        read_label_file(folder / f"{split}D.tsv"),
        normalize_code,
        texts,
        diagnosis_check,
        report.missing_diagnosis,
        report.labels_without_text,
    )
    procedures, report.procedure_labels, dup_p = _gold_codes(
        read_label_file(folder / f"{split}P.tsv"),
        normalize_pcs,
        texts,
        procedure_check,
        report.missing_procedure,
        report.labels_without_text,
    )
    report.duplicate_labels = dup_d + dup_p
    report.documents_with_diagnosis = sum(1 for codes in diagnoses.values() if codes)
    report.documents_with_procedure = sum(1 for codes in procedures.values() if codes)
    report.distinct_diagnosis = len({c for codes in diagnoses.values() for c in codes})
    report.distinct_procedure = len({c for codes in procedures.values() for c in codes})
    encounters = [
        Encounter(
            encounter_id=doc_id,
            setting="inpatient",
            documents=[Document(document_id=doc_id, type=DOCUMENT_TYPE, text=text)],
            gold=Gold(diagnosis=diagnoses.get(doc_id, []), procedure=procedures.get(doc_id, [])),
        )
        for doc_id, text in texts.items()
    ]
    _log_report(report)
    return CodiEspSplit(encounters, report)


def _log_report(report: CodiEspReport) -> None:
    logger.info(
        "CodiEsp %s: %d documents, %d diagnosis / %d procedure labels",
        report.split,
        report.documents,
        report.diagnosis_labels,
        report.procedure_labels,
    )
    for task, system, missing in (
        ("diagnosis", "ICD-10-CM", report.missing_diagnosis),
        ("procedure", "ICD-10-PCS", report.missing_procedure),
    ):
        if missing:
            logger.info(
                "CodiEsp %s: %d %s codes (%d labels) not in %s; kept in gold",
                report.split,
                len(missing),
                task,
                sum(missing.values()),
                system,
            )
    if report.labels_without_text:
        logger.warning(
            "CodiEsp %s: %d labels name %d articles without an English text file; ignored",
            report.split,
            sum(report.labels_without_text.values()),
            len(report.labels_without_text),
        )


def iter_background(data_dir: Path) -> Iterator[Encounter]:
    """The unlabelled English background documents (from background_text_files_en.tar.gz or a folder)."""
    root = resolve_root(data_dir)
    folder = root / "background" / "text_files_en"
    if folder.is_dir():
        for doc_id, text in _read_texts(folder).items():
            yield _unlabelled(doc_id, text)
        return
    archive = root / "background_text_files_en.tar.gz"
    if not archive.is_file():
        raise DatasetNotFoundError(f"no CodiEsp background documents under {root}")
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".txt"):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            yield _unlabelled(Path(member.name).stem, handle.read().decode("utf-8"))


def _unlabelled(doc_id: str, text: str) -> Encounter:
    return Encounter(
        encounter_id=doc_id,
        setting="inpatient",
        documents=[Document(document_id=doc_id, type=DOCUMENT_TYPE, text=text)],
    )
