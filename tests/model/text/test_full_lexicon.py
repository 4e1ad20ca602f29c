"""A few tests on the full lexicon (ICD-10-CM always; index, Disease Ontology and CodiEsp when present)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.cache import read_cache, write_cache
from medcode.data.icd10cm import load_icd10cm
from medcode.model.text.lexicon import Lexicon
from medcode.model.text.pipeline import TextPipeline, make_keyer, make_nlp
from medcode.model.text.sources import (
    build_default_lexicon,
    core_terms,
    lexicon_cache_path,
    load_default_lexicon,
)
from medcode.settings import get_settings


def test_core_term_diagnosis_codes_exist_in_icd10cm() -> None:
    icd = load_icd10cm()
    for term in core_terms():
        for code in term.codes:
            if "." in code or len(code) == 3:
                assert code in icd, (term.text, code)


@pytest.mark.shared
def test_core_term_procedure_codes_prefix_valid_pcs_codes(shared_data: Path) -> None:
    from medcode.data.icd10pcs import load_icd10pcs

    pcs = load_icd10pcs(shared_data)
    for term in core_terms():
        for code in term.codes:
            if "." not in code and len(code) >= 4:
                assert pcs.is_known(code), (term.text, code)


@pytest.mark.slow
def test_lexicon_from_icd10cm_alone(tmp_path: Path) -> None:
    nlp = make_nlp()
    keyer = make_keyer(nlp)
    lexicon = build_default_lexicon(keyer, data_dir=None)
    assert len(lexicon) > 30_000
    pipeline = TextPipeline(nlp, lexicon)
    found = {
        m.text: m for m in pipeline.extract("HTN with aspiration pneumonia; left femur fracture. No fever.")
    }
    assert found["HTN"].concepts[0] == "I10"
    assert found["aspiration pneumonia"].concepts[0] == "J69.0"
    assert found["left femur fracture"].type == "injury"
    assert found["fever"].assertion.negated
    path = tmp_path / "lexicon.pkl"
    assert write_cache(path, lexicon.write, "lexicon cache")
    cached = read_cache(path, Lexicon.read, "lexicon cache")
    assert cached is not None and cached.entries == lexicon.entries


@pytest.mark.shared
@pytest.mark.slow
def test_full_pipeline_on_codiesp_notes(shared_data: Path) -> None:
    from medcode.data.codiesp import read_split
    from medcode.model.text import get_pipeline

    settings = get_settings()
    assert settings.data_dir is not None, "tests of the shared data run with MEDCODE_DATA_DIR set"
    pipeline = get_pipeline(settings.data_dir, settings.cache_dir)
    assert lexicon_cache_path(settings.data_dir, settings.cache_dir).is_file()
    again = load_default_lexicon(make_keyer(make_nlp()), settings.data_dir, settings.cache_dir)
    assert again.entries.keys() == pipeline.lexicon.entries.keys()
    encounters = read_split(shared_data, "dev").encounters[:25]
    total = 0
    for encounter in encounters:
        text = encounter.documents[0].text
        mentions = pipeline.extract(text, encounter.encounter_id)
        total += len(mentions)
        for mention in mentions:
            assert text[mention.start : mention.end] == mention.text
    assert total / len(encounters) > 5
    found = {
        m.text.lower(): m
        for m in pipeline.extract("History of arterial hypertension; renal colic. No hematuria.")
    }
    assert found["arterial hypertension"].concepts[0] == "I10"
    assert found["arterial hypertension"].assertion.historical
    assert "N23" in found["renal colic"].concepts
    assert found["hematuria"].assertion.negated
