"""Evaluate a model on a corpus split: the programmatic entry point behind `medcode evaluate`.

    from medcode.evaluation.evaluate import evaluate_coder
    report, curves = evaluate_coder(coder, encounters, dataset="codiesp", split="dev", model_ref="champion",
                                    train=train_encounters)
    report["tasks"]["diagnosis"]["map"]

Training code (issue 6) and the learning loop call this with a model in hand; the CLI adds the loading,
the report files and MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medcode.data.errors import MedcodeError
from medcode.data.types import Encounter, Task
from medcode.evaluation import checks
from medcode.evaluation.report import build_report, clean_json
from medcode.evaluation.runner import ModelRun, run_coder, valid_code_filters
from medcode.evaluation.scoring import TASKS, training_frequencies
from medcode.model.base import Coder

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
    if not any(e.gold is not None and (e.gold.diagnosis or e.gold.procedure) for e in encounters):
        raise MedcodeError(f"no gold codes in {dataset} {split}: nothing to evaluate against")
    if run is None:
        run = run_coder(coder, encounters, desc=f"suggest ({model_ref})", progress=progress)
    if frequencies is None and train:
        frequencies = {task: training_frequencies(train, task) for task in TASKS}
    valid = valid_code_filters([*encounters, *(train or [])], data_dir)
    report, curves = build_report(
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
    provenance = model_training_data(coder)
    report["model_training_data"] = clean_json(provenance)
    report["warnings"] = held_out_warnings(provenance, dataset, split)
    for warning in report["warnings"]:
        log.warning("%s", warning)
    return report, curves


def model_training_data(coder: Coder) -> dict[str, Any] | None:
    """What the model pack says about its training and calibration data (read only), when it says it."""
    data = coder.training_data
    return dict(data) if data else None


def held_out_warnings(provenance: Mapping[str, Any] | None, dataset: str, split: str) -> list[str]:
    """Warn when the split being reported is one the model was trained or tuned on."""
    if not provenance:
        return []
    trained_on = str(provenance.get("dataset") or "").lower()
    splits = provenance.get("splits") or ([provenance["split"]] if provenance.get("split") else ["train"])
    if trained_on == dataset.lower() and split in {str(s) for s in splits}:
        return [
            f"the model was trained or tuned on {dataset}/{split}: these figures are not held-out; "
            "report a split the model never saw"
        ]
    return []


def write_and_log(
    report: dict[str, Any], curves: dict[str, Any], out_dir: Path, *, mlflow: bool = True
) -> tuple[list[Path], str | None]:
    """Write the report folder and, unless told not to, log it to MLflow; returns (files, run id)."""
    from medcode.evaluation.report import write_report

    files = write_report(report, curves, out_dir)
    run_id = None
    if mlflow:
        from medcode.evaluation.tracking import log_report

        run_id = log_report(report, out_dir)
    return files, run_id
