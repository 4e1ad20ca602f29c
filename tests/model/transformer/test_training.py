from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from medcode.data.codesystems import CodeSets
from medcode.data.types import Assertion, Encounter, Mention
from medcode.training.transformer_train import split_held_out
from tests.model.transformer.conftest import UNSEEN_CODE, note, synthetic_corpus


def test_training_loss_drops(trained_coder: Any) -> None:
    losses = trained_coder.metrics["train_epoch_losses"]
    assert len(losses) == trained_coder.config.epochs
    assert losses[-1] < 0.5 * losses[0]


def test_trained_model_ranks_the_gold_code_first_on_training_notes(trained_coder: Any) -> None:
    fit, _ = split_held_out(synthetic_corpus()[:18], trained_coder.config.calibration_fraction)
    singles = [e for e in fit if e.gold and len(e.gold.diagnosis) == 1][:4]
    assert singles
    for encounter in singles:
        ranked = trained_coder.suggest(encounter).ranked("diagnosis")
        assert ranked[0].code == encounter.gold.diagnosis[0]


def test_suggestion_evidence_points_into_the_document(trained_coder: Any) -> None:
    text = (
        "Seen today in clinic.\nHe complains of low back pain after lifting boxes.\nFollow up in two weeks."
    )
    result = trained_coder.suggest(note(text))
    top = result.ranked("diagnosis")[0]
    assert top.code == "M54.50"
    (evidence,) = top.evidence
    assert (
        text[evidence.start : evidence.end]
        == evidence.text
        == "He complains of low back pain after lifting boxes."
    )


def test_result_is_calibrated_with_thresholds_and_routing(trained_coder: Any) -> None:
    result = trained_coder.suggest(note("Essential hypertension is treated with enalapril."))
    assert result.calibrated
    assert [c.code for c in result.codes] == ["I10"]
    assert all(c.confidence < trained_coder.task_thresholds("diagnosis").decision for c in result.candidates)
    assert result.routing.decision in ("review", "auto_accept")
    assert len(result.ranked("diagnosis")) <= trained_coder.config.max_candidates


def test_code_never_seen_in_training_is_proposed_by_description_retrieval(trained_coder: Any) -> None:
    assert UNSEEN_CODE not in {label.code for label in trained_coder.labels}
    result = trained_coder.suggest(
        note("Seen today.\nCT scan showed acute appendicitis.\nSurgery was planned.")
    )
    retrieved = [c for c in result.ranked("diagnosis") if "not seen in training" in c.rationale]
    assert retrieved[0].code == UNSEEN_CODE
    assert retrieved[0].evidence[0].text == "CT scan showed acute appendicitis."


def _asthma_mention(text: str, assertion: Assertion) -> Any:
    start = text.index("asthma")

    def extractor(encounter: Encounter) -> list[Mention]:
        return [Mention(document_id="d1", start=start, end=start + 6, text="asthma", assertion=assertion)]

    return extractor


@pytest.mark.parametrize(
    ("assertion", "expected"),
    [(Assertion(), True), (Assertion(negated=True), False), (Assertion(family=True), False)],
)
def test_code_resting_only_on_a_non_present_mention_is_dropped(
    trained_coder: Any, monkeypatch: pytest.MonkeyPatch, assertion: Assertion, expected: bool
) -> None:
    text = "She has asthma and uses a salbutamol inhaler for wheezing."
    monkeypatch.setattr(trained_coder, "config", replace(trained_coder.config, mask_non_present=False))
    monkeypatch.setattr(trained_coder, "mention_extractor", _asthma_mention(text, assertion))
    result = trained_coder.suggest(note(text))
    assert ("J45.909" in {c.code for c in result.ranked("diagnosis")}) is expected


def test_negated_mention_is_masked_and_not_coded(trained_coder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "She has asthma and uses a salbutamol inhaler for wheezing."
    plain = trained_coder.suggest(note(text))
    assert "J45.909" in {c.code for c in plain.codes}
    monkeypatch.setattr(trained_coder, "mention_extractor", _asthma_mention(text, Assertion(negated=True)))
    masked = trained_coder.suggest(note(text))
    assert "J45.909" not in {c.code for c in masked.codes}


def test_pack_round_trip_gives_identical_predictions(trained_coder: Any, tmp_path: Path) -> None:
    from medcode.model.pack import load_pack as load_any_pack
    from medcode.model.pack import read_manifest
    from medcode.model.transformer import TransformerCoder, load_pack, save_pack

    save_pack(trained_coder, tmp_path / "pack")
    manifest = read_manifest(tmp_path / "pack")
    assert manifest.preset == "transformer"
    assert manifest.version == trained_coder.version
    assert manifest.code_set_version == "ICD-10-CM 2026"
    assert [lab["code"] for lab in manifest.config["labels"]] == [lab.code for lab in trained_coder.labels]
    assert set(manifest.calibration) >= {"label:diagnosis"}
    assert "diagnosis" in manifest.thresholds
    assert len(manifest.training_data["fingerprint"]) == 64
    assert manifest.metrics["train_steps"] > 0
    assert manifest.config["chunk_tokens"] == trained_coder.config.chunk_tokens
    assert "weights.safetensors" in manifest.files

    loaded = load_pack(tmp_path / "pack")
    via_registry = load_any_pack(tmp_path / "pack")
    assert isinstance(via_registry, TransformerCoder)
    for coder in (loaded, via_registry):
        coder.mention_extractor = trained_coder.mention_extractor
    for encounter in synthetic_corpus()[:6]:
        expected = trained_coder.suggest(encounter).model_dump()
        assert loaded.suggest(encounter).model_dump() == expected
        assert via_registry.suggest(encounter).model_dump() == expected


def test_load_pack_refuses_another_preset(trained_coder: Any, tmp_path: Path) -> None:
    from medcode.data.errors import ModelNotFoundError
    from medcode.model.pack import read_manifest
    from medcode.model.transformer import load_pack, save_pack

    save_pack(trained_coder, tmp_path / "pack")
    manifest = read_manifest(tmp_path / "pack")
    manifest.preset = "default"
    with pytest.raises(ModelNotFoundError):
        load_pack(tmp_path / "pack", manifest)


def test_frozen_encoder_trains_only_the_head_from_cached_states() -> None:
    import torch

    from medcode.training.transformer_train import train_transformer
    from tests.model.transformer.conftest import no_mentions, tiny_config

    corpus = synthetic_corpus(12, seed=3)
    config = tiny_config(freeze_layers=-1, epochs=6, head_lr=2e-2, calibration_fraction=0.0)
    coder = train_transformer(
        corpus, [], config, device="cpu", code_sets=CodeSets(), mention_extractor=no_mentions
    )
    from medcode.model.transformer.network import load_encoder

    pristine, _ = load_encoder(None, config.num_layers)
    for name, tensor in pristine.state_dict().items():
        assert torch.equal(tensor, coder.net.encoder.state_dict()[name]), name
    losses = coder.metrics["train_epoch_losses"]
    assert losses[-1] < losses[0]
    assert not coder.calibrated
