"""The trained default model on a tiny synthetic corpus: fit, suggest, pack round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.data.errors import ModelNotFoundError
from medcode.model.catalog import Knowledge
from medcode.model.pack import load_pack, read_manifest
from medcode.model.trained.coder import DefaultCoder, DefaultConfig
from medcode.training.default import fit_default

from .synthetic import make_corpus


@pytest.fixture(scope="module")
def trained() -> DefaultCoder:
    config = DefaultConfig(use_dense=False, folds=3, ranker_folds=2, ranker_max_iter=60)
    coder, fits = fit_default(make_corpus(50, seed=5), Knowledge(), config)
    assert fits["diagnosis"].positives > 0
    return coder


def test_trained_model_suggests_calibrated_codes_with_evidence(trained: DefaultCoder) -> None:
    dev = make_corpus(8, seed=11)
    for enc in dev:
        result = trained.suggest(enc)
        assert result.calibrated is True
        text = enc.documents[0].text
        for code in [*result.codes, *result.candidates]:
            assert code.evidence, code.code
            for ev in code.evidence:
                assert text[ev.start : ev.end] == ev.text
        assert {c.code for c in result.codes} & set(enc.gold.diagnosis if enc.gold else [])


def test_negated_condition_is_never_suggested(trained: DefaultCoder) -> None:
    from medcode.data.types import Document, Encounter

    enc = Encounter(
        encounter_id="neg",
        documents=[Document(document_id="d1", text="Known essential hypertension.\nNo asthma.\nNo fever.")],
    )
    ranked = {c.code for c in [*trained.suggest(enc).codes, *trained.suggest(enc).candidates]}
    assert "J45.909" not in ranked
    assert "R50.9" not in ranked


def test_default_pack_round_trip_is_exact(trained: DefaultCoder, tmp_path: Path) -> None:
    trained.metrics = {"validation": {"tasks": {"diagnosis": {"map": 0.5}}}}
    trained.save(tmp_path / "pack")
    manifest = read_manifest(tmp_path / "pack")
    assert manifest.preset == "default"
    assert manifest.training_data["fingerprint"]
    assert set(manifest.thresholds) == {"diagnosis", "procedure"}
    assert manifest.calibration["diagnosis"]["method"] in ("isotonic", "platt")
    again = load_pack(tmp_path / "pack")
    assert isinstance(again, DefaultCoder)
    assert again.version == trained.version
    assert again.metrics == trained.metrics
    for enc in make_corpus(6, seed=12):
        assert again.suggest(enc) == trained.suggest(enc)
    # saving the loaded model writes the same manifest (apart from the save time)
    again.save(tmp_path / "pack2")
    first = json.loads((tmp_path / "pack" / "manifest.json").read_text())
    second = json.loads((tmp_path / "pack2" / "manifest.json").read_text())
    for data in (first, second):
        data.pop("created_at"), data.pop("files")  # zip timestamps make the weight checksums differ
    assert first == second


def test_pack_with_another_feature_set_is_refused(trained: DefaultCoder, tmp_path: Path) -> None:
    trained.save(tmp_path / "pack")
    path = tmp_path / "pack" / "manifest.json"
    data = json.loads(path.read_text())
    data["config"]["features"] = ["old_feature"]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelNotFoundError, match="feature set"):
        load_pack(tmp_path / "pack")


def test_pack_without_numpy_arrays_loads_through_scikit_learn_with_the_same_answers(
    trained: DefaultCoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older pack (rankers and TF-IDF only as joblib objects) still loads, through scikit-learn, and
    answers as the same model stored with arrays (read in numpy)."""
    from medcode.model.trained import classifier, coder
    from medcode.model.trained.numeric import TfidfSims, TreeRanker

    trained.save(tmp_path / "new")
    with monkeypatch.context() as patch:
        patch.setattr(coder, "ranker_arrays", lambda ranker: {})
        patch.setattr(classifier.TfidfSims, "arrays_of", staticmethod(lambda vectorizer, train: {}))
        trained.save(tmp_path / "old")
    old, new = load_pack(tmp_path / "old"), load_pack(tmp_path / "new")
    assert isinstance(old, DefaultCoder) and isinstance(new, DefaultCoder)
    assert not isinstance(old.tasks["diagnosis"].ranker, TreeRanker)
    assert old.tasks["diagnosis"].classifier.tfidf is None
    assert isinstance(new.tasks["diagnosis"].ranker, TreeRanker)
    assert isinstance(new.tasks["diagnosis"].classifier.tfidf, TfidfSims)
    for enc in make_corpus(6, seed=13):
        assert old.suggest(enc) == new.suggest(enc)
