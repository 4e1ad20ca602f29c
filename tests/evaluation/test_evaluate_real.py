"""`medcode evaluate` against the real pieces: the CodiEsp reader and the model registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medcode import cli


@pytest.mark.shared
def test_evaluate_reads_codiesp_with_train_frequencies(
    shared_data: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main([
        "evaluate", "--dataset", "codiesp", "--data-dir", str(shared_data / "codiesp"), "--split", "dev",
        "--model", "fake", "--limit", "12", "--out", str(tmp_path / "r"), "--format", "json", "--no-mlflow",
        "--no-progress", "--no-safety",
    ])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n_documents"] == 12
    diagnosis = report["tasks"]["diagnosis"]
    assert diagnosis["counts"]["gold_codes"] > 50
    assert diagnosis["by_frequency"] is not None
    assert sum(b["n_gold"] for b in diagnosis["by_frequency"].values()) == diagnosis["counts"]["gold_codes"]
    assert diagnosis["counts"]["ignored_gold_codes"] == 0  # corpus gold codes are valid by definition
    assert report["tasks"]["procedure"]["counts"]["gold_codes"] > 0


@pytest.mark.slow
def test_evaluate_runs_the_builtin_model_through_the_registry(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main([
        "evaluate", "--dataset", "jsonl", "--data-dir", str(corpus), "--split", "dev", "--model", "builtin",
        "--out", str(tmp_path / "r"), "--format", "json", "--no-mlflow", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model"] == "builtin"
    assert report["calibrated"] is False
    assert 0.0 <= report["tasks"]["diagnosis"]["map"] <= 1.0
    assert (tmp_path / "r" / "summary.md").is_file()
