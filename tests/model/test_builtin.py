from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.types import Document, Encounter
from medcode.model.builtin import BuiltinCoder
from medcode.model.pack import load_pack


def _enc(text: str) -> Encounter:
    return Encounter(encounter_id="e1", documents=[Document(document_id="d1", text=text)])


@pytest.fixture(scope="module")
def builtin() -> BuiltinCoder:
    coder = BuiltinCoder()
    coder.warm_up()
    return coder


def test_builtin_codes_a_plain_diagnosis_with_evidence(builtin: BuiltinCoder) -> None:
    text = "Assessment: essential hypertension."
    result = builtin.suggest(_enc(text))
    codes = {c.code: c for c in result.codes}
    assert "I10" in codes
    ev = codes["I10"].evidence[0]
    assert text[ev.start : ev.end] == ev.text
    assert "hypertension" in ev.text.lower()


def test_builtin_is_uncalibrated_and_routes_to_review(builtin: BuiltinCoder) -> None:
    result = builtin.suggest(_enc("Essential hypertension."))
    assert result.calibrated is False
    assert result.routing.decision == "review"
    assert "cold_start_model" in result.routing.reasons


def test_negated_mention_is_not_coded(builtin: BuiltinCoder) -> None:
    result = builtin.suggest(_enc("The patient denies chest pain. No fever."))
    ranked = {c.code for c in [*result.codes, *result.candidates]}
    assert not any(code.startswith(("R07", "R50")) for code in ranked)


def test_candidates_are_ranked_below_suggestions(builtin: BuiltinCoder) -> None:
    result = builtin.suggest(_enc("Community acquired pneumonia. Type 2 diabetes mellitus."))
    assert result.codes
    assert all(c.evidence for c in result.codes)
    if result.candidates:
        assert len(result.candidates) <= 100


def test_builtin_pack_round_trip_gives_identical_results(builtin: BuiltinCoder, tmp_path: Path) -> None:
    builtin.save(tmp_path / "pack")
    again = load_pack(tmp_path / "pack")
    enc = _enc("Essential hypertension and iron deficiency anemia. No asthma.")
    assert again.suggest(enc) == builtin.suggest(enc)
    assert again.version == builtin.version
