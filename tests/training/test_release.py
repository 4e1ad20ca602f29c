"""The release model (`medcode train --release`): fitted on train+dev, with its calibration and thresholds
chosen by cross-validation on train alone, recorded in the pack, registered with a release tag and never
gated on dev."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medcode import cli
from medcode.data.errors import InvalidInputError
from medcode.data.types import Encounter, Gold
from medcode.settings import reset_settings
from medcode.training.options import TrainingOptions
from medcode.training.presets import FitEnvironment, FitJob, fit_model
from medcode.training.release import fit_release
from tests.model.synthetic import make_corpus, write_jsonl_corpus

DEV_ONLY_CODE = "Z99.89"


def _split(name: str, n: int, seed: int) -> list[Encounter]:
    return [e.model_copy(update={"encounter_id": f"{name}-{e.encounter_id}"}) for e in make_corpus(n, seed)]


def _dev_with_other_labels(n: int) -> list[Encounter]:
    """Dev notes coded differently from train (one extra code that no note mentions): a fit that used them
    to choose its calibration or thresholds would choose different ones."""
    out = []
    for e in _split("dev", n, 2):
        assert e.gold is not None
        gold = Gold(diagnosis=[*e.gold.diagnosis, DEV_ONLY_CODE], procedure=e.gold.procedure)
        out.append(e.model_copy(update={"gold": gold}))
    return out


@pytest.fixture(scope="module")
def fits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("release")
    options = TrainingOptions(
        dataset="jsonl",
        data_dir=tmp,
        dense=False,
        folds=3,
        ranker_max_iter=30,
        knowledge_dir=tmp / "none",
        mlflow=False,
    )
    environment = FitEnvironment(cache_dir=tmp / "cache")
    train, dev = _split("train", 24, 1), _dev_with_other_labels(12)

    def plain(encounters: list[Encounter], name: str) -> Any:
        return fit_model(options, FitJob(encounters, dataset=name, environment=environment))

    return {
        "train": train,
        "dev": dev,
        "release": fit_release(options, train, dev, environment=environment),
        "train_only": plain(train, "jsonl:train"),
        "both": plain([*train, *dev], "jsonl:train+dev"),
        "tmp": tmp,
    }


def _calibration_curve(model: Any) -> np.ndarray:
    return np.asarray(model.calibrator(np.linspace(0.0, 1.0, 101)))


def test_release_settings_are_the_train_cross_validation_ones(fits: dict[str, Any]) -> None:
    release = fits["release"].tasks["diagnosis"]
    train_only = fits["train_only"].tasks["diagnosis"]
    assert release.thresholds == train_only.thresholds
    np.testing.assert_allclose(_calibration_curve(release), _calibration_curve(train_only))


def test_settings_chosen_with_dev_would_differ(fits: dict[str, Any]) -> None:
    """The guard of the test above: fitted on train+dev folds, the settings are not the train-only ones, so
    a release that let dev choose them would fail it."""
    release = fits["release"].tasks["diagnosis"]
    both = fits["both"].tasks["diagnosis"]
    assert release.thresholds != both.thresholds or not np.allclose(
        _calibration_curve(release), _calibration_curve(both)
    )


def test_release_models_are_fitted_on_train_and_dev(fits: dict[str, Any]) -> None:
    release = fits["release"].tasks["diagnosis"]
    assert release.n_train_docs == len(fits["train"]) + len(fits["dev"])
    assert release.train_count[DEV_ONLY_CODE] == len(fits["dev"])
    assert DEV_ONLY_CODE not in fits["train_only"].tasks["diagnosis"].train_count


def test_the_pack_records_both_fits(fits: dict[str, Any]) -> None:
    from medcode.model.pack import load_pack
    from medcode.model.trained.coder import DefaultCoder

    loaded = load_pack(fits["release"].save(fits["tmp"] / "pack"))
    assert isinstance(loaded, DefaultCoder)
    record = loaded.training_data
    assert record["dataset"] == "jsonl:train+dev"
    assert record["documents"] == 36
    assert record["release"] is True
    assert record["settings_from"]["dataset"] == "jsonl:train"
    assert record["settings_from"]["documents"] == 24
    assert "3-fold" in record["calibration_data"] and "jsonl:train" in record["calibration_data"]


def test_a_release_needs_a_coded_validation_split_disjoint_from_train(tmp_path: Path) -> None:
    options = TrainingOptions(dataset="jsonl", data_dir=tmp_path, dense=False)
    train = _split("train", 6, 1)
    with pytest.raises(InvalidInputError, match="has no coded encounters"):
        fit_release(options, train, [])
    with pytest.raises(InvalidInputError, match="in both train and dev"):
        fit_release(options, train, train[:2])
    with pytest.raises(InvalidInputError, match="default preset only"):
        fit_release(TrainingOptions(dataset="jsonl", data_dir=tmp_path, preset="builtin"), train, train)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MEDCODE_HOME", str(tmp_path / "home"))
    reset_settings()
    yield tmp_path
    reset_settings()


def test_promote_without_release_is_one_clear_error(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["train", "--dataset", "jsonl", "--data-dir", str(registry), "--promote", "--no-mlflow"])
    assert code == 2
    assert "--promote applies to --release only" in capsys.readouterr().err
    code = cli.main(
        ["train", "--dataset", "jsonl", "--data-dir", str(registry), "--release", "--promote", "--no-mlflow"]
    )
    assert code == 2
    assert "cannot go with --no-mlflow" in capsys.readouterr().err


@pytest.mark.slow
def test_train_release_is_tagged_and_takes_the_champion_alias_only_when_asked(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medcode.settings import get_settings

    corpus = write_jsonl_corpus(registry / "corpus", n_train=24, n_dev=10)
    common = [
        "train",
        "--dataset",
        "jsonl",
        "--data-dir",
        str(corpus),
        "--knowledge-dir",
        str(registry / "none"),
    ]
    common += ["--no-dense", "--folds", "3", "--ranker-iter", "30"]
    assert cli.main([*common, "--preset", "builtin", "--format", "json"]) == 0
    capsys.readouterr()
    assert get_settings().registry.champion_version() == "1"

    assert cli.main([*common, "--release"]) == 0
    text = capsys.readouterr().out
    assert "release model fitted on jsonl:train+dev" in text
    assert "not compared with the champion" in text
    assert get_settings().registry.champion_version() == "1"  # never gated on dev, never promoted silently
    client = get_settings().registry.client()
    tags = client.get_model_version("medcode", "2").tags
    assert tags["release"] == "true" and tags["fit_on"] == "jsonl:train+dev"
    assert "validation_value" not in tags

    assert cli.main([*common, "--release", "--promote", "--format", "json"]) == 0
    outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert outcome["registered_version"] == "3" and outcome["promotion"]["promote"] is True
    assert get_settings().registry.champion_version() == "3"
