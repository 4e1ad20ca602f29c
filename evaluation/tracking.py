"""Log an evaluation report to MLflow: one run with its metrics, parameters and the report folder."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from medcode.settings import get_settings

log = logging.getLogger(__name__)

EXPERIMENT = "medcode-evaluation"


def flatten_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """Numeric figures as MLflow metric names: `diagnosis.map`, `diagnosis.by_frequency.unseen.recall`...

    Curves, examples and nulls are left out; booleans are not metrics.
    """
    out: dict[str, float] = {}
    for task, row in report.get("tasks", {}).items():
        for name, value in _walk(row, task):
            out[name] = value
    for name, value in _walk(report.get("routing", {}), "routing"):
        out[name] = value
    for name, value in _walk(report.get("timing", {}), "timing"):
        out[name] = value
    return out


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        yield prefix, float(value)
    elif isinstance(value, Mapping):
        for key, sub in value.items():
            if key in ("examples", "title"):
                continue
            yield from _walk(sub, f"{prefix}.{_metric_key(str(key))}")


def _metric_key(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-. /" else "_" for ch in key)


def _experiment_id(client: Any) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    root = get_settings().mlflow_artifact_root
    root.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(EXPERIMENT, artifact_location=(root / EXPERIMENT).as_uri()))


def log_report(report: Mapping[str, Any], out_dir: Path, run_name: str | None = None) -> str:
    """One MLflow run in the "medcode-evaluation" experiment; returns its run id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_mlflow_uri
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment_id(client)
    name = run_name or f"evaluate {report['model']} {report['dataset']}/{report['split']}"
    run = client.create_run(experiment_id, run_name=name, tags={"medcode.kind": "evaluation"})
    run_id = str(run.info.run_id)
    try:
        params = {
            "dataset": report.get("dataset"),
            "split": report.get("split"),
            "model": report.get("model"),
            "model_version": report.get("model_version"),
            "code_set_version": report.get("code_set_version"),
            "calibrated": report.get("calibrated"),
            "n_documents": report.get("n_documents"),
        }
        for key, value in params.items():
            client.log_param(run_id, key, str(value))
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in flatten_metrics(report).items()]
        for start in range(0, len(metrics), 500):
            client.log_batch(run_id, metrics=metrics[start : start + 500])
        client.log_artifacts(run_id, str(out_dir))
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("evaluation logged to MLflow run %s (%s)", run_id, uri)
    return run_id
