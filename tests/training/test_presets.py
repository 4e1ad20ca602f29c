"""The preset registry: one entry per preset for loading (model.presets) and fitting (training.presets),
and the one builder of the training options shared by train, retrain and simulate-feedback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from medcode.cli import build_parser
from medcode.data.errors import DatasetNotFoundError, InvalidInputError, ModelNotFoundError
from medcode.model import presets
from medcode.training.options import TrainingOptions
from medcode.training.presets import FITS, FitJob, fit_model

from .fakes import encounter


def test_every_preset_has_a_loader_and_a_fit_and_nothing_else_is_fitted() -> None:
    assert set(FITS) == set(presets.PRESETS) == {"builtin", "default", "transformer"}
    assert presets.names(learning_only=True) == ("default", "transformer")


def test_an_unknown_preset_is_one_clear_error() -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"unknown model preset 'bert'.*builtin, default, transformer"
    ):
        presets.get("bert")
    with pytest.raises(ModelNotFoundError, match="unknown model preset"):
        TrainingOptions(dataset="jsonl", data_dir=Path("."), preset="bert")


def test_a_learning_preset_refuses_an_uncoded_training_set(tmp_path: Path) -> None:
    options = TrainingOptions(dataset="jsonl", data_dir=tmp_path)
    uncoded = encounter("e1", "Essential hypertension.").model_copy(update={"gold": None})
    with pytest.raises(InvalidInputError, match="no coded encounters"):
        fit_model(options, FitJob([uncoded]))


def _options(argv: list[str]) -> TrainingOptions:
    args = build_parser().parse_args(argv)
    return TrainingOptions.from_args(args)


def test_train_retrain_and_simulate_read_the_same_options(tmp_path: Path) -> None:
    common = ["--dataset", "jsonl", "--data-dir", str(tmp_path), "--no-dense", "--limit", "8", "--no-mlflow"]
    common += ["--ranker-iter", "40"]
    train = _options(["train", *common, "--validation-split", "test", "--folds", "4"])
    retrain = _options(["retrain", *common, "--validation-split", "test", "--folds", "4"])
    simulate = _options(
        ["simulate-feedback", *common, "--rounds", "1", "--eval-split", "test", "--folds", "4"]
    )
    assert train == retrain
    assert simulate == train  # --eval-split is the simulation's old name of --validation-split
    assert train.dense is False and train.mlflow is False and train.validation_split == "test"


def test_the_simulation_defaults_to_a_reduced_fit(tmp_path: Path) -> None:
    common = ["--dataset", "jsonl", "--data-dir", str(tmp_path)]
    simulate = _options(["simulate-feedback", *common, "--rounds", "1"])
    train = _options(["train", *common])
    assert (simulate.folds, simulate.ranker_max_iter) == (3, 150)
    assert (train.folds, train.ranker_max_iter) == (None, None)  # the preset's own configuration


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--holdout", "0.95"], "--holdout"),
        (["--limit", "2"], "--limit must be at least 4"),
        (["--folds", "1"], "--folds must be at least 2"),
        (["--tolerance", "-0.1"], "--tolerance must not be negative"),
    ],
)
def test_bad_training_options_are_one_line_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _options(["train", "--dataset", "jsonl", "--data-dir", str(tmp_path), *extra])


def test_a_missing_data_folder_is_refused(tmp_path: Path) -> None:
    args = argparse.Namespace(
        **vars(build_parser().parse_args(["train", "--dataset", "jsonl", "--data-dir", str(tmp_path / "no")]))
    )
    with pytest.raises(DatasetNotFoundError, match="data folder not found"):
        TrainingOptions.from_args(args)


def test_knowledge_root_prefers_the_option_then_the_data_folders_parent_then_the_fallback(
    tmp_path: Path,
) -> None:
    data = tmp_path / "datasets" / "codiesp"
    data.mkdir(parents=True)
    fallback = tmp_path / "elsewhere"
    options = TrainingOptions(dataset="codiesp", data_dir=data)
    assert options.knowledge_root(fallback) == fallback
    (tmp_path / "datasets" / "icd10cm").mkdir()
    assert options.knowledge_root(fallback) == tmp_path / "datasets"
    chosen = TrainingOptions(dataset="codiesp", data_dir=data, knowledge_dir=tmp_path / "k")
    assert chosen.knowledge_root(fallback) == tmp_path / "k"


def test_a_feedback_training_set_is_fitted_under_its_merged_name_with_its_evidence(tmp_path: Path) -> None:
    from medcode.training.feedback import TrainingSet

    options = TrainingOptions(dataset="jsonl", data_dir=tmp_path, train_split="train")
    encounters = [encounter("a", "type 2 diabetes", ["E11.9"])]
    spans = {"a": [("diagnosis", "E11.9", "d1", 0, 15)]}
    job = FitJob.of_training_set(TrainingSet(encounters, evidence=spans), options)
    assert (job.dataset, job.evidence, list(job.train)) == ("jsonl:train+feedback", spans, encounters)
    assert FitJob.of_training_set(TrainingSet(encounters), options).evidence is None


def test_training_reads_only_the_coded_encounters_of_a_split(tmp_path: Path) -> None:
    from medcode.data.jsonl import write_jsonl
    from medcode.data.types import Document, Encounter

    uncoded = Encounter(encounter_id="u", documents=[Document(document_id="d1", text="fever")])
    write_jsonl([encounter("a", "type 2 diabetes", ["E11.9"]), uncoded], tmp_path / "train.jsonl")
    options = TrainingOptions(dataset="jsonl", data_dir=tmp_path)
    assert [e.encounter_id for e in options.coded_encounters("train")] == ["a"]
    with pytest.raises(DatasetNotFoundError):
        options.coded_encounters("dev")
