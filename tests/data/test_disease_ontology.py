from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.disease_ontology import load_disease_ontology
from medcode.data.errors import DatasetNotFoundError


def test_synonyms_carry_icd10cm_xrefs(data_root: Path) -> None:
    ontology = load_disease_ontology(data_root)
    pairs = list(ontology.pairs())
    assert ("adult-onset diabetes", "E11") in pairs
    assert ("sugar disease", "E11") not in pairs  # RELATED is not asked for by default
    assert ("sugar disease", "E11") in list(ontology.pairs(("RELATED",)))


def test_xref_file_fills_missing_codes_and_labels(data_root: Path) -> None:
    pairs = list(load_disease_ontology(data_root).pairs())
    assert ("no xref disease", "E11.9") in pairs and ("no xref disease", "E11.22") in pairs
    assert ("only in xrefs", "S03.0") in pairs


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no Disease Ontology files"):
        load_disease_ontology(tmp_path)
