"""`medcode retrain`: base corpus + the service database's finalized reviews, gated, as one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.data.types import Gold
from medcode.review_desk import ReviewDesk, SimulatedCoder
from medcode.settings import reset_settings
from medcode.training.active import fifo_priority
from tests.fakes import FakeCoder

from ..model.synthetic import make_corpus, write_jsonl_corpus


def test_retrain_command_requires_an_existing_data_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retrain", "--dataset", "jsonl", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "data folder not found" in capsys.readouterr().err


@pytest.mark.slow
def test_retrain_command_trains_on_base_plus_reviews_and_reports_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDCODE_REGISTERED_MODEL", "retrain-cli-test")
    reset_settings()
    data = write_jsonl_corpus(tmp_path / "corpus", n_train=16, n_dev=8)
    db = f"sqlite:///{tmp_path / 'service.db'}"
    notes = [e.model_copy(update={"encounter_id": f"new-{e.encounter_id}"}) for e in make_corpus(4, seed=9)]
    dev_note = json.loads((data / "dev.jsonl").read_text().splitlines()[0])
    desk = ReviewDesk(db, SimulatedCoder({e.encounter_id: e.gold or Gold() for e in notes}))
    try:
        for enc in notes:
            desk.submit(enc, FakeCoder.ranking({}), fifo_priority)
        desk.submit(make_corpus(1, seed=2)[0].model_copy(update={"encounter_id": dev_note["encounter_id"]}),
                    FakeCoder.ranking({}), fifo_priority)  # fmt: skip
        assert desk.review(10) == 5
    finally:
        desk.close()
    knowledge = tmp_path / "no-knowledge"
    knowledge.mkdir()
    code = main(
        [
            "retrain", "--dataset", "jsonl", "--data-dir", str(data), "--db", db,
            "--no-dense", "--folds", "2", "--ranker-iter", "20", "--knowledge-dir", str(knowledge),
            "--no-mlflow", "--format", "json",
        ]
    )  # fmt: skip
    reset_settings()
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["feedback_examples"] == 4  # the review of a dev encounter is not exported for training
    assert out["training"]["encounters"] == 20 and out["training"]["feedback_encounters"] == 4
    assert out["promoted"] is True and out["reason"] == "no champion yet"
    assert 0 <= out["candidate"]["map_ci"][0] <= out["candidate"]["map"] <= out["candidate"]["map_ci"][1] <= 1
