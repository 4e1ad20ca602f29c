"""`medcode train` end to end on a tiny synthetic corpus: MLflow run, registry version, champion gate,
and `load_model` by alias, version and pack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode import cli
from medcode.settings import reset_settings
from tests.model.synthetic import write_jsonl_corpus


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MEDCODE_HOME", str(tmp_path / "home"))
    reset_settings()
    yield tmp_path
    reset_settings()


def _train(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert cli.main(["train", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_train_registers_and_promotes_only_when_not_worse(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medcode.model.builtin import BuiltinCoder
    from medcode.model.trained.coder import DefaultCoder
    from medcode.settings import get_settings

    corpus = write_jsonl_corpus(registry / "corpus", n_train=40, n_dev=12)
    common = ["--dataset", "jsonl", "--data-dir", str(corpus), "--knowledge-dir", str(registry / "none")]
    first = _train(capsys, *common, "--preset", "builtin")
    assert first["registered_version"] == "1"
    assert first["promotion"]["promote"] is True
    assert get_settings().registry.champion_version() == "1"
    assert isinstance(get_settings().registry.load_model("champion"), BuiltinCoder)

    pack = registry / "default-pack"
    second = _train(capsys, *common, "--preset", "default", "--no-dense", "--folds", "3", "--out", str(pack))
    assert second["registered_version"] == "2"
    map_builtin = first["metrics"]["tasks"]["diagnosis"]["map"]
    map_default = second["metrics"]["tasks"]["diagnosis"]["map"]
    assert map_default >= map_builtin
    assert second["promotion"]["promote"] is True
    assert get_settings().registry.champion_version() == "2"
    champion = get_settings().registry.load_model("champion")
    assert isinstance(champion, DefaultCoder)
    assert champion.version == second["version"]
    assert isinstance(get_settings().registry.load_model("models:/medcode/1"), BuiltinCoder)
    assert get_settings().registry.load_model(str(pack)).version == second["version"]

    # a worse model (the built-in one again) is registered but does not take the alias
    third = _train(capsys, *common, "--preset", "builtin")
    assert third["registered_version"] == "3"
    assert third["promotion"]["promote"] is False
    assert get_settings().registry.champion_version() == "2"


def test_train_rejects_a_missing_data_folder(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["train", "--dataset", "jsonl", "--data-dir", str(registry / "nope"), "--no-mlflow"])
    assert code == 2
    assert "not found" in capsys.readouterr().err
