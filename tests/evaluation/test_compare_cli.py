"""`medcode compare`: two models on the same documents, differences with paired-bootstrap intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medcode import cli
from medcode.data.types import Document, Encounter, Gold
from medcode.evaluation.compare import compare_results
from tests.evaluation.conftest import RULES, WEAK_RULES
from tests.evaluation.fakes import keyword_coder


def test_compare_prints_differences_with_intervals(
    corpus: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main([
        "compare", "weak", "fake", "--dataset", "jsonl", "--data-dir", str(corpus), "--split", "dev",
        "--n-resamples", "200", "--seed", "1", "--format", "json", "--no-progress", "--out", str(tmp_path / "c"),
    ])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["model_a"], out["model_b"], out["n_documents"], out["n_resamples"]) == (
        "weak",
        "fake",
        3,
        200,
    )
    diagnosis = out["tasks"]["diagnosis"]
    for metric in ("map", "micro_f1", "micro_precision", "micro_recall", "p_at_5", "r_at_15", "exact_match"):
        row = diagnosis[metric]
        assert row["delta"] == pytest.approx(row["b"] - row["a"])
        assert row["low"] <= row["delta"] <= row["high"]
    # weak ranks J18.9 (not gold) above E11.9 in e1... and misses the fracture: fake is better on MAP
    assert diagnosis["map"]["a"] < diagnosis["map"]["b"]
    assert diagnosis["map_interval"]["b"]["value"] == pytest.approx(diagnosis["map"]["b"])
    assert (
        json.loads((tmp_path / "c" / "compare.json").read_text())["tasks"]["diagnosis"]["map"]
        == diagnosis["map"]
    )
    # both models saw the same encounters, in the same order
    assert fake_models["weak"].calls == fake_models["fake"].calls == ["e1", "e2", "e3"]


def test_compare_text_output_names_both_models(
    corpus: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["compare", "weak", "fake", "--dataset", "jsonl", "--data-dir", str(corpus),
                     "--n-resamples", "50", "--no-progress"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "A = weak" in text and "B = fake" in text and "95% CI" in text


def _encounters(n: int) -> list[Encounter]:
    texts = ["diabetes and hypertension", "pneumonia", "fracture with diabetes", "hypertension"]
    golds = [["E11.9", "I10"], ["J18.9"], ["S52.501A", "E11.9"], ["I10"]]
    return [
        Encounter(
            encounter_id=f"e{i}",
            documents=[Document(document_id="d1", text=texts[i % 4])],
            gold=Gold(diagnosis=golds[i % 4]),
        )
        for i in range(n)
    ]


def test_paired_intervals_are_reproducible_and_seedable() -> None:
    encounters = _encounters(40)
    a = [keyword_coder(WEAK_RULES).suggest(e) for e in encounters]
    b = [keyword_coder(RULES).suggest(e) for e in encounters]
    first = compare_results(encounters, a, b, n_resamples=300, seed=0)
    again = compare_results(encounters, a, b, n_resamples=300, seed=0)
    other = compare_results(encounters, a, b, n_resamples=300, seed=1)
    assert first == again
    assert first["diagnosis"]["micro_f1"]["low"] != other["diagnosis"]["micro_f1"]["low"] or (
        first["diagnosis"]["micro_f1"]["high"] != other["diagnosis"]["micro_f1"]["high"]
    )
    same = compare_results(encounters, b, b, n_resamples=100, seed=0)
    assert same["diagnosis"]["map"]["delta"] == 0.0 and same["diagnosis"]["map"]["low"] == 0.0


def test_map_helpers_for_the_learning_loop() -> None:
    from medcode.evaluation.compare import map_interval, paired_map_difference
    from medcode.evaluation.metrics import mean_average_precision

    encounters = _encounters(20)
    a = [keyword_coder(WEAK_RULES).suggest(e) for e in encounters]
    b = [keyword_coder(RULES).suggest(e) for e in encounters]
    interval = map_interval(encounters, b, n_resamples=200)
    rankings = [[c.code for c in r.ranked("diagnosis")] for r in b]
    golds = [e.gold.diagnosis for e in encounters if e.gold]
    assert interval.value == pytest.approx(mean_average_precision(rankings, golds))
    assert interval.low <= interval.value <= interval.high
    diff = paired_map_difference(encounters, a, b, n_resamples=200)
    assert diff.b == pytest.approx(interval.value)
    assert diff.delta == pytest.approx(diff.b - diff.a)
