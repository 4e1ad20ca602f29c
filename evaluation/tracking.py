"""MLflow tracking: the one `Tracker` every medcode run logs through.

A Tracker is one tracking store (URI and artifact root) and one experiment. `run(name, tags)` opens a run
(nested under the active one when there is one) and yields its id; `params`, `metrics`, `tags`, `files`,
`folder` and `json` log into the active run. Evaluation reports are logged with `log_report`; training
registers packs and moves the champion alias through `training.tracking.register_pack` and
`training.promotion.promote`, on the same Tracker.

The store is the model registry's (`model.registry.Registry`: tracking URI, registered model name); the
caller builds it (the CLI from the settings: `Tracker.from_settings`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.model.registry import Registry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from medcode.settings import Settings

log = logging.getLogger(__name__)

EXPERIMENT = "medcode-evaluation"
SKIPPED_KEYS = frozenset({"examples", "title"})
"""Report entries that are not figures (example lists, titles) and never become metrics."""


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a nested mapping as MLflow metric names: {"diagnosis": {"map": 0.5}} -> {"diagnosis.map":
    0.5}. Booleans, None, NaN, strings, curves (lists) and example lists are left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if key in SKIPPED_KEYS:
            continue
        name = f"{prefix}{_metric_key(str(key))}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            out[name] = float(value)
    return out


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Parameters as MLflow parameter names (nested keys joined by dots; values cut to 500 characters)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out


def flatten_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """An evaluation report's figures: `diagnosis.map`, `diagnosis.by_frequency.unseen.recall`,
    `routing.*`, `timing.*`."""
    return {
        **flatten(report.get("tasks", {})),
        **flatten(report.get("routing", {}), "routing."),
        **flatten(report.get("timing", {}), "timing."),
    }


def _metric_key(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-. /" else "_" for ch in key)


class Tracker:
    """One MLflow store and experiment (see the module docstring)."""

    def __init__(self, registry: Registry, artifact_root: Path, experiment: str = EXPERIMENT) -> None:
        self.registry = registry
        self.artifact_root = Path(artifact_root)
        self.experiment = experiment
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, experiment: str = EXPERIMENT, settings: Settings | None = None) -> Tracker:
        """The store the settings name (`MLFLOW_TRACKING_URI`, default an SQLite file in MEDCODE_HOME)."""
        if settings is None:
            from medcode.settings import get_settings

            settings = get_settings()
        return cls(settings.registry, settings.mlflow_artifact_root, experiment)

    @property
    def uri(self) -> str:
        return self.registry.tracking_uri

    @property
    def model_name(self) -> str:
        """The registered model packs are registered under (the champion's)."""
        return self.registry.model_name

    def for_experiment(self, experiment: str) -> Tracker:
        """The same store, another experiment."""
        return Tracker(self.registry, self.artifact_root, experiment)

    @property
    def client(self) -> MlflowClient:
        """An MLflow client on this store (tracking and registry)."""
        if self._client is None:
            self._client = self.registry.client()
        return self._client

    def experiment_id(self) -> str:
        """The experiment's id, created (artifacts under `artifact_root/<experiment>`) when missing."""
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        location = (self.artifact_root / self.experiment).resolve().as_uri()
        return str(self.client.create_experiment(self.experiment, artifact_location=location))

    @contextmanager
    def run(self, name: str, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        """An active run (nested under the active one, if any); yields its id. A failure marks it FAILED."""
        experiment = self.experiment_id()
        self.registry.configure_mlflow()
        import mlflow

        nested = mlflow.active_run() is not None
        with mlflow.start_run(
            experiment_id=experiment, run_name=name, nested=nested, tags=dict(tags or {})
        ) as run:
            yield str(run.info.run_id)

    def tags(self, tags: Mapping[str, str]) -> None:
        import mlflow

        mlflow.set_tags(dict(tags))

    def params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params(flatten_params(params))

    def metrics(self, metrics: Mapping[str, Any], prefix: str = "") -> None:
        import mlflow

        flat = flatten(metrics, prefix)
        names = list(flat)
        for start in range(0, len(names), 500):
            mlflow.log_metrics({k: flat[k] for k in names[start : start + 500]})

    def files(self, paths: list[Path], artifact_path: str | None = None) -> None:
        import mlflow

        for path in paths:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def folder(self, path: Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(str(path), artifact_path=artifact_path)

    def json(self, data: Mapping[str, Any], name: str) -> None:
        import mlflow

        mlflow.log_dict(dict(data), name)


def log_report(
    report: Mapping[str, Any], out_dir: Path, run_name: str | None = None, tracker: Tracker | None = None
) -> str:
    """One run in the "medcode-evaluation" experiment with the report's figures and folder; its id."""
    tracker = tracker or Tracker.from_settings(EXPERIMENT)
    name = run_name or f"evaluate {report['model']} {report['dataset']}/{report['split']}"
    with tracker.run(name, {"medcode.kind": "evaluation"}) as run_id:
        tracker.params(
            {
                key: report.get(key)
                for key in (
                    "dataset",
                    "split",
                    "model",
                    "model_version",
                    "code_set_version",
                    "calibrated",
                    "n_documents",
                )
            }
        )
        tracker.metrics(flatten_metrics(report))
        tracker.folder(out_dir)
    log.info("evaluation logged to MLflow run %s (%s)", run_id, tracker.uri)
    return run_id
