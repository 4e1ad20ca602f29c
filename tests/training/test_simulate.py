"""`medcode simulate-feedback` end to end on a tiny synthetic corpus (CPU, no sentence encoder, no MLflow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.commands.loop import print_simulation
from medcode.data.types import Encounter
from medcode.training.presets import PreparedCache
from medcode.training.simulate import split_train

from ..model.synthetic import make_corpus, write_jsonl_corpus


def test_split_train_is_seeded_and_covers_every_encounter() -> None:
    corpus = make_corpus(20, seed=4)
    initial, batches = split_train(corpus, 0.3, 3, seed=5)
    again, _ = split_train(corpus, 0.3, 3, seed=5)
    assert [e.encounter_id for e in initial] == [e.encounter_id for e in again]
    assert len(initial) == 6 and [len(b) for b in batches] == [5, 5, 4]
    ids = [e.encounter_id for e in initial] + [e.encounter_id for b in batches for e in b]
    assert sorted(ids) == sorted(e.encounter_id for e in corpus)


class _Resources:
    """Counts how notes are read: one by one (`prepare`) or in batches (`prepare_many`)."""

    def __init__(self) -> None:
        self.single = 0
        self.batches: list[int] = []

    def prepare(self, encounter: Encounter, extractor: object) -> tuple[str, bool]:
        self.single += 1
        return (encounter.encounter_id, encounter.gold is None)

    def prepare_many(self, encounters: list[Encounter], extractor: object) -> list[tuple[str, bool]]:
        self.batches.append(len(encounters))
        return [(e.encounter_id, e.gold is None) for e in encounters]


class _Pipeline:
    extract = None


def test_cache_warm_reads_notes_in_batches_once_and_without_gold() -> None:
    corpus = make_corpus(10, seed=3)
    resources = _Resources()
    cache = PreparedCache(resources, _Pipeline())  # type: ignore[arg-type]
    cache.get(corpus[0])
    cache.warm(corpus, "reading", progress=False, chunk=4)
    cache.warm(corpus, "reading again", progress=False, chunk=4)
    assert resources.single == 1 and resources.batches == [4, 4, 1]  # each note read once
    assert [cache.get(e) for e in corpus] == [(e.encounter_id, True) for e in corpus]  # gold never seen
    assert resources.single == 1


@pytest.mark.slow
def test_simulate_feedback_runs_rounds_through_the_review_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl_corpus(tmp_path / "corpus", n_train=36, n_dev=14)
    knowledge = tmp_path / "no-knowledge"
    knowledge.mkdir()
    out = tmp_path / "out"
    code = main(
        [
            "simulate-feedback",
            "--dataset", "jsonl",
            "--data-dir", str(data),
            "--rounds", "2",
            "--strategy", "both",
            "--review-fraction", "0.5",
            "--folds", "2",
            "--initial-fraction", "0.3",
            "--no-dense",
            "--no-mlflow",
            "--knowledge-dir", str(knowledge),
            "--resamples", "100",
            "--ranker-iter", "20",
            "--out", str(out),
            "--format", "json",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    for row in rounds:
        low, high = row["map_ci"]
        assert 0 <= low <= row["map"] <= high <= 1
    assert summary["promoted"][0] == 0 and set(summary["promoted"]) <= {0, 1, 2}
    # the coders review half of each round's arrivals, in queue order; feedback accumulates
    assert rounds[0]["feedback_encounters"] == 0 and rounds[0]["train_encounters"] == 11
    assert [r["arrived"] for r in rounds[1:]] == [13, 12]
    for row in rounds[1:]:
        assert row["reviewed"] == min(round(row["arrived"] * 0.5), row["arrived"] - row["auto_accepted"])
    assert rounds[2]["feedback_encounters"] == rounds[1]["reviewed"] + rounds[2]["reviewed"] > 0
    assert rounds[2]["train_encounters"] == 11 + rounds[2]["feedback_encounters"]
    assert summary["strategy"] == "uncertainty"
    assert set(summary["strategies"]) == {"uncertainty@0.5", "fifo@0.5"}
    assert summary["strategies"]["fifo@0.5"]["review"]["accepted"] > 0
    (comparison,) = summary["comparisons"]  # uncertainty against FIFO, paired on the same documents
    assert (comparison["active"], comparison["fifo"]) == ("uncertainty@0.5", "fifo@0.5")
    assert comparison["delta"] == pytest.approx(comparison["active_map"] - comparison["fifo_map"])
    assert comparison["delta_ci"][0] <= comparison["delta"] <= comparison["delta_ci"][1]
    print_simulation(summary)  # the text form reads the same summary
    text = capsys.readouterr().out
    assert "strategy uncertainty@0.5" in text and "strategy fifo@0.5" in text
    assert "uncertainty@0.5 - fifo@0.5: final champion MAP" in text
    assert summary["improvement"]["after"] >= summary["improvement"]["before"]  # the gate never regresses
    assert (out / "learning_loop.png").stat().st_size > 0
    assert json.loads((out / "simulation.json").read_text())["rounds"] == rounds
