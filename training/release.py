"""A release model: the default preset fitted on train+validation, every setting it learns from held-out
scores chosen by K-fold cross-validation on the training split alone (`medcode train --release`).

`medcode train` keeps the validation split (dev for CodiEsp) to measure the model and to gate promotion. A
release is what a shared-task submission or a hospital deploys once the configuration is settled:

1. settings: the preset fitted on the training split alone, exactly as `medcode train` fits it. Its K-fold
   out-of-fold ranker scores over train fit the calibration and tune the decision, per-code and
   auto-accept thresholds; nothing of the validation split is read.
2. refit: the preset fitted again on train+validation (document classifiers, code counts, ranker, sentence
   memory, the codes seen in training).
3. the refitted model takes step 1's calibrators and thresholds (the refit's own were fitted on folds that
   hold validation notes and are dropped), and its `training_data` records both fits.

The preset's hyper-parameters (folds, ranker iterations, learning rate, ...) come from its config and the
options; none is selected on the validation split today (it is only measured there), so there is nothing
else to re-select. The release model has seen the validation split: it is never measured on it nor compared
with the champion there. It is registered with a `release` tag and takes the champion alias only when asked
(`--promote`), or is served by version (`--model models:/NAME/VERSION`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medcode.data.errors import InvalidInputError
from medcode.data.types import Encounter
from medcode.evaluation.tracking import Tracker
from medcode.model.base import Coder
from medcode.training.options import TrainingOptions
from medcode.training.presets import (
    EvidenceSpans,
    FitEnvironment,
    FitJob,
    Progress,
    fit_model,
    no_progress,
)

log = logging.getLogger(__name__)

RELEASE_PRESETS = ("default",)
"""Presets whose held-out settings `fit_release` knows how to choose on train and carry over."""
TAG_RELEASE = "release"
TAG_FIT_ON = "fit_on"
TAG_SETTINGS_FROM = "settings_from"


def fit_release(
    options: TrainingOptions,
    train: Sequence[Encounter],
    validation: Sequence[Encounter],
    *,
    evidence: EvidenceSpans | None = None,
    progress: Progress = no_progress,
    environment: FitEnvironment | None = None,
) -> Coder:
    """Fit `options.preset` on train+validation with its calibration and thresholds chosen by K-fold
    cross-validation on `train` alone (see the module docstring). `evidence` may cover both splits."""
    from medcode.model.trained.coder import DefaultCoder

    if options.preset not in RELEASE_PRESETS:
        raise InvalidInputError(
            f"--release fits the {', '.join(RELEASE_PRESETS)} preset only, not {options.preset!r}"
        )
    train = [e for e in train if e.gold is not None]
    validation = [e for e in validation if e.gold is not None]
    if not validation:
        raise InvalidInputError(
            f"--release refits on {options.train_split}+{options.validation_split}, "
            f"but {options.dataset} {options.validation_split} has no coded encounters"
        )
    shared = set(e.encounter_id for e in train) & set(e.encounter_id for e in validation)
    if shared:
        raise InvalidInputError(
            f"{len(shared)} encounter ids are in both {options.train_split} and {options.validation_split} "
            f"(e.g. {sorted(shared)[0]}); a release fit needs disjoint splits"
        )
    environment = environment or FitEnvironment()
    train_name = f"{options.dataset}:{options.train_split}"
    both_name = f"{train_name}+{options.validation_split}"
    train_ids = {e.encounter_id for e in train}
    log.info("release step 1/2: settings by cross-validation on %s (%d encounters)", train_name, len(train))
    settings = fit_model(
        options,
        FitJob(
            train,
            (),
            evidence={k: v for k, v in (evidence or {}).items() if k in train_ids} or None,
            dataset=train_name,
            progress=progress,
            environment=environment,
        ),
    )
    log.info("release step 2/2: refit on %s (%d encounters)", both_name, len(train) + len(validation))
    final = fit_model(
        options,
        FitJob(
            [*train, *validation],
            (),
            evidence=evidence or None,
            dataset=both_name,
            progress=progress,
            environment=environment,
        ),
    )
    assert isinstance(settings, DefaultCoder) and isinstance(final, DefaultCoder)
    carry_settings(final, settings)
    return final


def carry_settings(final: Any, settings: Any) -> None:
    """Give the refitted default model the calibrators and thresholds of the train-only fit, and record
    where each came from in its `training_data`. A task without training labels (only validation ones)
    has no settings chosen on train and is dropped."""
    dropped = sorted(set(final.tasks) - set(settings.tasks))
    for task in dropped:
        log.warning("release: %s has no labels in the training split; no settings for it, task dropped", task)
        del final.tasks[task]
    for task, model in final.tasks.items():
        chosen = settings.tasks[task]
        final.tasks[task] = dataclasses.replace(
            model, calibrator=chosen.calibrator, thresholds=chosen.thresholds
        )
    record = dict(settings.training_data)
    final.training_data = {
        **final.training_data,
        "release": True,
        "calibration_data": f"{record.get('calibration_data', 'held out')} of {record.get('dataset', 'train')} "
        "(the train-only fit)",
        "settings_from": {
            k: record[k] for k in ("dataset", "documents", "fingerprint", "calibration_data") if k in record
        },
        "tasks_dropped": dropped,
    }


def release_evidence(options: TrainingOptions, train: list[Encounter], validation: list[Encounter]) -> Any:
    """Sentence-level gold evidence of both splits where the dataset has it (CodiEsp-X), else None."""
    from medcode.training.pipeline import training_evidence

    found: EvidenceSpans = {}
    for split, encounters in ((options.train_split, train), (options.validation_split, validation)):
        spans = training_evidence(dataclasses.replace(options, train_split=split), encounters)
        found.update(spans or {})
    return found or None


def release_and_register(
    options: TrainingOptions,
    workdir: Path,
    *,
    tracker: Tracker | None,
    out: Path | None = None,
    environment: FitEnvironment | None = None,
    promote: bool = False,
) -> dict[str, Any]:
    """Fit the release model, save it (to `out` when given) and, with a tracker, log and register it with
    its release tags; `promote` moves the champion alias to it (explicitly: no validation gate applies)."""
    import time

    from medcode.training.pipeline import load_splits
    from medcode.training.presets import tqdm_progress

    started = time.perf_counter()
    train, validation = load_splits(options)
    coder = fit_release(
        options,
        train,
        validation,
        evidence=release_evidence(options, train, validation),
        progress=tqdm_progress,
        environment=environment,
    )
    seconds = round(time.perf_counter() - started, 1)
    coder.metrics = {**coder.metrics, "release": {"train_seconds": seconds}}
    pack = coder.save(out or workdir / "pack")
    fit_on = f"{options.dataset}:{options.train_split}+{options.validation_split}"
    settings_from = str(coder.training_data.get("calibration_data", ""))
    outcome: dict[str, Any] = {
        "version": coder.version,
        "preset": options.preset,
        "release": True,
        "fit_on": fit_on,
        "settings_from": settings_from,
        "train_encounters": len(train),
        "validation_encounters": len(validation),
        "validation_split": None,
        "metrics": {},
        "pack": str(out) if out else None,
    }
    if tracker is None:
        return outcome
    outcome.update(_register_release(options, tracker, coder, pack, fit_on, settings_from, seconds, promote))
    return outcome


def _register_release(
    options: TrainingOptions,
    tracker: Tracker,
    coder: Coder,
    pack: Path,
    fit_on: str,
    settings_from: str,
    seconds: float,
    promote: bool,
) -> dict[str, Any]:
    from medcode.training.promotion import CHAMPION
    from medcode.training.tracking import register_pack

    params: dict[str, Any] = {k: str(v) for k, v in dataclasses.asdict(options).items()}
    params["config"] = coder.config.to_json()
    tags = {
        "preset": options.preset,
        "model_version": coder.version,
        TAG_RELEASE: "true",
        TAG_FIT_ON: fit_on,
    }
    with tracker.run(f"release-{options.preset}", tags):
        tracker.params(params)
        tracker.metrics({"train_seconds": seconds})
        logged = register_pack(tracker, pack, tracker.model_name)
    client = tracker.client
    for key, value in (
        (TAG_RELEASE, "true"),
        (TAG_FIT_ON, fit_on),
        (TAG_SETTINGS_FROM, settings_from),
    ):
        client.set_model_version_tag(logged.name, logged.version, key, value)
    if promote:
        reason = "release model promoted explicitly (--promote); it has seen the validation split, so no gate"
        client.set_registered_model_alias(logged.name, CHAMPION, logged.version)
    else:
        reason = "release model: not compared with the champion (it has seen the validation split)"
    client.set_model_version_tag(logged.name, logged.version, "promotion", reason)
    return {
        "registered_name": logged.name,
        "registered_version": logged.version,
        "run_id": logged.run_id,
        "promotion": {"promote": promote, "reason": reason},
    }
