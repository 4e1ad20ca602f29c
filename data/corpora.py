"""One entry point for labelled corpora: `load_corpus(dataset, data_dir, split) -> list[Encounter]`.

Datasets:
- "codiesp": `data_dir` is the CodiEsp folder (or the datasets root holding `codiesp/`), split train/dev/test.
- "jsonl": `data_dir` is a folder with `<split>.jsonl`, or a `.jsonl` file (then `split` is not used).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from medcode.data import codiesp, jsonl
from medcode.data.errors import DatasetNotFoundError
from medcode.data.types import Encounter

logger = logging.getLogger(__name__)

DATASETS = ("codiesp", "jsonl")


@dataclass
class Corpus:
    """Encounters of one split and, for CodiEsp, the report of codes the code sets do not know."""

    dataset: str
    split: str
    encounters: list[Encounter]
    report: codiesp.CodiEspReport | None = None


def _pcs_check(data_dir: Path) -> codiesp.CodeCheck | None:
    """ICD-10-PCS validity (full codes, or partial codes that prefix valid ones) when a PCS list is found."""
    from medcode.data.icd10pcs import find_pcs_files, load_icd10pcs

    root = codiesp.resolve_root(data_dir)
    candidates = [root.parent, data_dir]
    for folder in candidates:
        if folder is not None and find_pcs_files(folder)[0] is not None:
            return load_icd10pcs(folder, with_tables=False).is_known
    logger.info("no ICD-10-PCS code list found; procedure codes are not checked")
    return None


def load_codiesp(data_dir: Path, split: str, check_codes: bool = True) -> Corpus:
    diagnosis_check = procedure_check = None
    if check_codes:
        from medcode.data.icd10cm import load_icd10cm

        diagnosis_check = load_icd10cm().__contains__
        procedure_check = _pcs_check(data_dir)
    loaded = codiesp.read_split(
        data_dir, split, diagnosis_check=diagnosis_check, procedure_check=procedure_check
    )
    return Corpus("codiesp", split, loaded.encounters, loaded.report)


def jsonl_path(data_dir: Path, split: str) -> Path:
    if data_dir.suffix == ".jsonl":
        if not data_dir.is_file():
            raise DatasetNotFoundError(f"JSONL file not found: {data_dir}")
        return data_dir
    path = data_dir / f"{split}.jsonl"
    if not path.is_file():
        present = sorted(p.stem for p in data_dir.glob("*.jsonl")) if data_dir.is_dir() else []
        hint = f" (splits present: {', '.join(present)})" if present else ""
        raise DatasetNotFoundError(f"JSONL split {split!r} not found: {path} does not exist{hint}")
    return path


def load_corpus_with_report(dataset: str, data_dir: Path, split: str) -> Corpus:
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise DatasetNotFoundError(f"data folder not found: {data_dir}")
    name = dataset.lower()
    if name == "codiesp":
        return load_codiesp(data_dir, split)
    if name == "jsonl":
        return Corpus("jsonl", split, jsonl.read_jsonl(jsonl_path(data_dir, split)))
    raise DatasetNotFoundError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def load_corpus(dataset: str, data_dir: Path, split: str) -> list[Encounter]:
    """Encounters with `gold` for one split of a dataset ("codiesp" or "jsonl")."""
    return load_corpus_with_report(dataset, data_dir, split).encounters
