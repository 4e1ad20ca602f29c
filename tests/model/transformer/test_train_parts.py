from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.codesystems import CodeSets
from medcode.data.types import Document, Encounter, Gold
from medcode.model.transformer.config import TransformerConfig
from medcode.training.transformer_train import (
    average_precision,
    build_labels,
    label_loss,
    split_held_out,
    training_fingerprint,
)


def _enc(i: int, dx: list[str], px: list[str] | None = None, text: str = "note") -> Encounter:
    return Encounter(
        encounter_id=f"e{i}",
        documents=[Document(document_id="d1", text=text)],
        gold=Gold(diagnosis=dx, procedure=px or []),
    )


def test_average_precision_matches_hand_computed_value() -> None:
    # gold at ranks 1 and 3, one gold code never ranked: (1/1 + 2/3) / 3
    assert average_precision(["A", "B", "C", "D"], {"A", "C", "Z"}) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision(["B"], {"A"}) == 0.0
    assert average_precision(["A", "A", "B"], {"B"}) == pytest.approx(1 / 2)


def test_held_out_split_is_fixed_by_encounter_id() -> None:
    encounters = [_enc(i, ["I10"]) for i in range(200)]
    fit, held = split_held_out(encounters, 0.2)
    assert 20 < len(held) < 60
    _fit2, held2 = split_held_out(list(reversed(encounters)), 0.2)
    assert {e.encounter_id for e in held} == {e.encounter_id for e in held2}
    assert not {e.encounter_id for e in fit} & {e.encounter_id for e in held}


def test_labels_cover_both_tasks_with_titles_and_min_count(tmp_path: Path) -> None:
    (tmp_path / "icd10pcs").mkdir()
    (tmp_path / "icd10pcs" / "icd10pcs-codes-2021.txt").write_text(
        "0DTJ4ZZ Resection of Appendix, Percutaneous Endoscopic Approach\n", encoding="utf-8"
    )
    encounters = [_enc(0, ["E11.9", "I10"], ["0DTJ4ZZ"]), _enc(1, ["I10"])]
    labels, counts = build_labels(encounters, min_count=1, code_sets=CodeSets(tmp_path))
    assert [(lab.system, lab.code) for lab in labels] == [
        ("ICD-10-CM", "E11.9"),
        ("ICD-10-CM", "I10"),
        ("ICD-10-PCS", "0DTJ4ZZ"),
    ]
    assert counts == [1, 2, 1]
    assert labels[1].title.startswith("Essential")
    assert (
        labels[2].title == "Resection of Appendix, Percutaneous Endoscopic Approach"
    )  # PCS from the data folder
    assert build_labels(encounters, 1, CodeSets(None))[0][2].title == ""  # no PCS release: no title
    frequent, _ = build_labels(encounters, min_count=2, code_sets=CodeSets(None))
    assert [lab.code for lab in frequent] == ["I10"]


def test_training_fingerprint_changes_with_gold_but_not_order() -> None:
    a, b = _enc(0, ["I10"]), _enc(1, ["E11.9"])
    assert training_fingerprint([a, b]) == training_fingerprint([b, a])
    assert training_fingerprint([a, b]) != training_fingerprint([a, _enc(1, ["E11.65"])])


def test_focal_and_asl_reduce_to_bce_without_focusing() -> None:
    import torch

    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.2, 1.5]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    bce = label_loss(logits, targets, TransformerConfig(loss="bce"))
    focal = label_loss(logits, targets, TransformerConfig(loss="focal", focal_gamma=0.0))
    asl = label_loss(
        logits, targets, TransformerConfig(loss="asl", asl_gamma_neg=0.0, asl_gamma_pos=0.0, asl_clip=0.0)
    )
    assert float(focal) == pytest.approx(float(bce), rel=1e-5)
    assert float(asl) == pytest.approx(float(bce), rel=1e-5)
    assert float(label_loss(logits, targets, TransformerConfig(loss="focal"))) < float(bce)


def test_config_round_trips_through_a_manifest_dict() -> None:
    config = TransformerConfig.tiny(retrieval_codes=["I10"], loss="asl")
    data = config.to_dict()
    data["labels"] = [{"system": "ICD-10-CM", "code": "I10"}]  # extra manifest keys are ignored
    assert TransformerConfig.from_dict(data) == config
    assert TransformerConfig().for_device("cuda").batch_size >= 16


def test_device_defaults_fine_tune_on_gpu_and_freeze_on_cpu() -> None:
    gpu = TransformerConfig.default_for("cuda")
    cpu = TransformerConfig.default_for("cpu")
    assert gpu.freeze_layers == 0 and gpu.batch_size >= 16
    assert cpu.freeze_layers == -1 and cpu.max_tokens <= 512


def test_label_sampling_keeps_every_gold_label_of_the_batch() -> None:
    import random
    from types import SimpleNamespace

    import torch

    from medcode.training.transformer_train import Trainer

    y = torch.zeros((2, 100))
    y[0, 7] = y[1, 93] = y[1, 7] = 1.0
    trainer = Trainer(
        SimpleNamespace(net=None), TransformerConfig(train_label_sample=10), "cpu", code_sets=CodeSets()
    )
    rows = trainer._sample_labels(y, random.Random(0))
    assert rows is not None and len(rows) == 10 and len(set(rows.tolist())) == 10
    assert {7, 93} <= set(rows.tolist())
    everything = Trainer(
        SimpleNamespace(net=None), TransformerConfig(train_label_sample=None), "cpu", code_sets=CodeSets()
    )
    assert everything._sample_labels(y, random.Random(0)) is None
