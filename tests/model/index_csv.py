"""Small Alphabetic Indexes in the CMS CSV layout for the index-walk tests, and a note coded by a model."""

from __future__ import annotations

from pathlib import Path

from medcode.data.icd10cm_index import read_index_csv
from medcode.data.index_walk import IndexTree, build_tree
from medcode.data.types import Document, Encounter, Patient
from medcode.model.base import Coder


def tree_from_csv(folder: Path, csv: str) -> IndexTree:
    """The walkable tree of an index written as the CMS CSV file into `folder`."""
    file = folder / "ICD10CM_2026_Index.csv"
    file.write_text(csv)
    return build_tree(read_index_csv(file), "test")


def suggested_codes(coder: Coder, text: str, *, setting: str, sex: str) -> list[str]:
    """The codes `coder` suggests for a one-document note of a 40-year-old patient."""
    encounter = Encounter(
        encounter_id="e1",
        patient=Patient(age=40, sex=sex),
        setting=setting,
        documents=[Document(document_id="d1", text=text)],
    )
    return [c.code for c in coder.suggest(encounter).codes]
