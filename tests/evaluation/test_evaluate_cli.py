"""`medcode evaluate` end to end on a tiny JSONL corpus with a fake model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medcode import cli

CONTRACT_KEYS = {
    "map", "micro_f1", "micro_precision", "micro_recall", "macro_f1", "macro_precision", "macro_recall",
    "p_at_5", "p_at_8", "p_at_15", "r_at_5", "r_at_8", "r_at_15", "micro_auc", "macro_auc", "exact_match",
    "ece", "automation_at_95", "encounters_auto_accepted", "candidate_recall_at_50", "unseen_recall",
    "by_frequency", "by_chapter", "safety", "rules",
}  # fmt: skip


def _evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["evaluate", *args])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else {}


def test_evaluate_prints_the_json_contract_and_writes_the_report(
    corpus: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code, report = _evaluate(
        capsys, "--dataset", "jsonl", "--data-dir", str(corpus), "--split", "dev", "--model", "fake",
        "--out", str(out), "--format", "json", "--no-mlflow", "--no-progress",
    )  # fmt: skip
    assert code == 0
    assert {"dataset", "split", "model", "n_documents", "tasks"} <= report.keys()
    assert (report["dataset"], report["split"], report["model"], report["n_documents"]) == (
        "jsonl",
        "dev",
        "fake",
        3,
    )
    for task in ("diagnosis", "procedure"):
        assert report["tasks"][task].keys() >= CONTRACT_KEYS, CONTRACT_KEYS - report["tasks"][task].keys()

    diagnosis = report["tasks"]["diagnosis"]
    # e1: E11.9, I10 ranked first and gold (AP 1); e2: only J18.9 ranked, gold R10.9 (AP 0); e3: S52.501A first (AP 1)
    assert diagnosis["map"] == pytest.approx(2 / 3)
    # suggested: {E11.9, I10}, {}, {S52.501A, E11.9}: tp 3, fp 1, fn 1
    assert diagnosis["micro_precision"] == pytest.approx(0.75)
    assert diagnosis["micro_f1"] == pytest.approx(0.75)
    assert diagnosis["exact_match"] == pytest.approx(1 / 3)
    assert diagnosis["candidate_recall_at_50"] == pytest.approx(3 / 4)
    # frequencies from train.jsonl: E11.9 frequent, I10 few-shot, S52.501A and R10.9 unseen
    assert diagnosis["by_frequency"]["frequent"]["n_gold"] == 1
    assert diagnosis["by_frequency"]["few_shot"]["recall"] == 1.0
    assert diagnosis["unseen_recall"] == pytest.approx(0.5)
    assert set(diagnosis["by_chapter"]) == {"4", "9", "18", "19"}  # J18.9 is only a candidate
    # E11.9 in e3 rests on "Mother had diabetes"
    assert diagnosis["safety"]["negated_family_hypothetical_only"] == 1
    assert diagnosis["safety"]["by_assertion"]["family"] == 1
    assert diagnosis["rules"]["checked"] is True
    assert diagnosis["rules"]["non_billable"] == 0
    assert report["tasks"]["procedure"]["map"] == pytest.approx(1.0)

    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) >= 3
    assert {"reliability.png", "precision_recall.png", "automation.png", "by_frequency.png"} <= set(pngs)
    assert all((out / p).stat().st_size > 1000 for p in pngs)
    summary = (out / "summary.md").read_text()
    assert "macro P/R/F1" in summary and "| map |" in summary
    saved = json.loads((out / "report.json").read_text())
    assert saved["tasks"]["diagnosis"]["map"] == pytest.approx(2 / 3)
    assert len(saved["curves"]["diagnosis"]["reliability"]) == 15


def test_evaluate_on_a_single_jsonl_file_has_no_frequencies(
    corpus: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _evaluate(
        capsys, "--dataset", "jsonl", "--data-dir", str(corpus / "dev.jsonl"), "--split", "dev",
        "--model", "fake", "--out", str(tmp_path / "r"), "--format", "json", "--no-mlflow", "--no-progress",
    )  # fmt: skip
    assert code == 0
    assert report["tasks"]["diagnosis"]["by_frequency"] is None
    assert report["tasks"]["diagnosis"]["unseen_recall"] is None


def test_evaluate_limit_takes_the_first_encounters(
    corpus: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _evaluate(
        capsys, "--dataset", "jsonl", "--data-dir", str(corpus), "--split", "dev", "--model", "fake",
        "--limit", "1", "--out", str(tmp_path / "r"), "--format", "json", "--no-mlflow", "--no-progress",
    )  # fmt: skip
    assert code == 0
    assert report["n_documents"] == 1
    assert fake_models["fake"].calls == ["e1"]


def test_evaluate_unknown_model_is_one_line_error(
    corpus: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["evaluate", "--dataset", "jsonl", "--data-dir", str(corpus), "--model", "nope", "--no-mlflow"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("medcode: error:") and "nope" in err and len(err.splitlines()) == 1


def test_evaluate_missing_split_is_one_line_error(
    corpus: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["evaluate", "--dataset", "jsonl", "--data-dir", str(corpus), "--split", "test", "--model", "fake"]
    )
    assert code == 2
    assert "test" in capsys.readouterr().err


def test_evaluate_logs_the_report_to_mlflow(
    corpus: Path, tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from medcode.evaluation.tracking import EXPERIMENT
    from medcode.settings import get_settings

    code, report = _evaluate(
        capsys, "--dataset", "jsonl", "--data-dir", str(corpus), "--split", "dev", "--model", "fake",
        "--out", str(tmp_path / "r"), "--format", "json", "--no-progress",
    )  # fmt: skip
    assert code == 0
    client = MlflowClient(tracking_uri=get_settings().resolved_mlflow_uri)
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.metrics["diagnosis.map"] == pytest.approx(2 / 3)
    assert run.data.metrics["diagnosis.by_frequency.unseen.recall"] == pytest.approx(0.5)
    assert run.data.params["model"] == "fake"
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.json", "summary.md", "reliability.png"} <= artifacts


def test_evaluate_without_gold_codes_is_refused(
    tmp_path: Path, fake_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "nogold.jsonl"
    corpus.write_text(
        json.dumps({"encounter_id": "x", "documents": [{"document_id": "d1", "text": "t"}]}) + "\n"
    )
    code = cli.main(
        ["evaluate", "--dataset", "jsonl", "--data-dir", str(corpus), "--model", "fake", "--no-mlflow"]
    )
    assert code == 2
    assert "no gold codes" in capsys.readouterr().err
