"""Evaluate a model on a corpus split: the programmatic entry point behind `medcode evaluate`.

    from evaluation.evaluate import evaluate_coder
    report, curves = evaluate_coder(coder, encounters, dataset="codiesp", split="dev", model_ref="champion",
                                    train=train_encounters)
    report["tasks"]["diagnosis"]["map"]

Training code (issue 6) and the learning loop call this with a model in hand; the CLI adds the loading,
the report files and MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.types import Encounter, Task
from evaluation import checks
from evaluation.report import build_report
from evaluation.runner import ModelRun, run_coder, valid_code_filters
from evaluation.scoring import TASKS, training_frequencies
from model.base import Coder

log = logging.getLogger(__name__)


def evaluate_coder(
    coder: Coder,
    encounters: Sequence[Encounter],
    *,
    dataset: str,
    split: str,
    model_ref: str,
    train: Sequence[Encounter] | None = None,
    frequencies: dict[Task, dict[str, int]] | None = None,
    run: ModelRun | None = None,
    safety: bool = True,
    rules: bool = True,
    progress: bool = True,
    data_dir: Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run `coder` over `encounters` (unless `run` already holds its results) and build the report.

    Code frequencies come from `frequencies`, else from `train` (the train split of the same dataset);
    with neither, the frequency breakdown is None. `data_dir` helps find the ICD-10-PCS list for the valid
    code set.
    """
    if run is None:
        run = run_coder(coder, encounters, desc=f"suggest ({model_ref})", progress=progress)
    if frequencies is None and train:
        frequencies = {task: training_frequencies(train, task) for task in TASKS}
    valid = valid_code_filters([*encounters, *(train or [])], data_dir)
    return build_report(
        dataset=dataset,
        split=split,
        model_ref=model_ref,
        model_version=str(coder.version),
        code_set_version=str(coder.code_set_version),
        encounters=encounters,
        results=run.results,
        timing=run.timing(),
        frequencies=frequencies,
        valid=valid,
        extractor=checks.default_extractor() if safety else None,
        terminology=checks.default_terminology() if rules else None,
    )


def write_and_log(
    report: dict[str, Any], curves: dict[str, Any], out_dir: Path, *, mlflow: bool = True
) -> tuple[list[Path], str | None]:
    """Write the report folder and, unless told not to, log it to MLflow; returns (files, run id)."""
    from evaluation.report import write_report

    files = write_report(report, curves, out_dir)
    run_id = None
    if mlflow:
        from evaluation.tracking import log_report

        run_id = log_report(report, out_dir)
    return files, run_id
