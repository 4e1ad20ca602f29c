"""The training run behind `medcode train`: load, fit (`training.presets.fit_model`), evaluate, save the
pack, log to MLflow, register, and apply the promotion gate (`training.promotion.promote`). Each step is a
function; `train_and_register` strings them together."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medcode.data.errors import DatasetNotFoundError, InvalidInputError
from medcode.data.types import Encounter
from medcode.evaluation.tracking import Tracker
from medcode.model.base import Coder
from medcode.training.options import TrainingOptions
from medcode.training.presets import EvidenceSpans, FitEnvironment, FitJob, fit_model, tqdm_progress

log = logging.getLogger(__name__)


def load_splits(options: TrainingOptions) -> tuple[list[Encounter], list[Encounter]]:
    """The coded encounters of the train and validation splits (`limit` applied to both)."""
    train = options.coded_encounters(options.train_split)
    if options.limit:
        train = train[: options.limit]
    if not train:
        raise InvalidInputError(f"no coded encounters in {options.dataset} {options.train_split}")
    try:
        validation = options.coded_encounters(options.validation_split)
    except DatasetNotFoundError as exc:
        log.warning("no validation split (%s); the model is not evaluated", exc)
        validation = []
    if options.limit:
        validation = validation[: options.limit]
    return train, validation


def training_evidence(options: TrainingOptions, train: list[Encounter]) -> EvidenceSpans | None:
    """Sentence-level evidence of the gold codes where the dataset has it (CodiEsp-X, aligned to the English
    text); None otherwise (the default model then locates evidence by similarity)."""
    if options.dataset.lower() != "codiesp":
        return None
    from medcode.training.codiesp_evidence import codiesp_sentence_evidence

    try:
        found = codiesp_sentence_evidence(options.data_dir, options.train_split)
    except (DatasetNotFoundError, InvalidInputError, OSError) as exc:
        log.warning("no CodiEsp-X evidence (%s); evidence is located by similarity", exc)
        return None
    doc_of = {e.encounter_id: e.documents[0].document_id for e in train}
    return {
        enc: [(task, code, doc_of[enc], start, end) for task, code, start, end in items]
        for enc, items in found.items()
        if enc in doc_of
    }


def evaluate(
    coder: Coder,
    validation: list[Encounter],
    train: list[Encounter],
    options: TrainingOptions,
    out_dir: Path,
) -> tuple[dict[str, Any], list[Path]]:
    """The evaluation suite's validation report and the files it wrote (plots...)."""
    if not validation:
        return {}, []
    from medcode.evaluation.evaluate import evaluate_coder
    from medcode.evaluation.report import write_report

    report, curves = evaluate_coder(
        coder,
        validation,
        dataset=options.dataset,
        split=options.validation_split,
        model_ref="candidate",
        train=train,
        data_dir=options.data_dir,
    )
    files = write_report(report, curves, out_dir)
    return report, files


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numeric task metrics of a report ({"tasks": {"diagnosis": {"map": ...}}})."""
    out: dict[str, Any] = {}
    for task, values in (report.get("tasks") or {}).items():
        if isinstance(values, dict):
            out[task] = {
                k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return {"tasks": out}


def train_and_register(
    options: TrainingOptions,
    workdir: Path,
    *,
    tracker: Tracker | None,
    out: Path | None = None,
    environment: FitEnvironment | None = None,
) -> dict[str, Any]:
    """Fit, evaluate, save (to `out` when given) and, with a tracker, log, register and gate."""
    from medcode.training.default import training_fingerprint

    started = time.perf_counter()
    train, validation = load_splits(options)
    job = FitJob(
        train,
        validation,
        evidence=training_evidence(options, train),
        dataset=f"{options.dataset}:{options.train_split}",
        progress=tqdm_progress,
        environment=environment or FitEnvironment(),
    )
    coder = fit_model(options, job)
    train_seconds = time.perf_counter() - started
    report, files = evaluate(coder, validation, train, options, workdir / "report")
    metrics = headline(report)
    metrics["train_seconds"] = round(train_seconds, 1)
    coder.metrics = {**coder.metrics, "validation": {"split": options.validation_split, **metrics}}
    pack = coder.save(out or workdir / "pack")
    outcome: dict[str, Any] = {
        "version": coder.version,
        "preset": options.preset,
        "train_encounters": len(train),
        "validation_split": options.validation_split,
        "validation_encounters": len(validation),
        "metrics": metrics,
        "pack": str(out) if out else None,
    }
    if tracker is None:
        return outcome
    validation_fp = training_fingerprint(validation) if validation else ""
    outcome.update(
        _log_register_promote(options, tracker, coder, pack, metrics, files, validation, train, validation_fp)
    )
    return outcome


def _log_register_promote(
    options: TrainingOptions,
    tracker: Tracker,
    coder: Coder,
    pack: Path,
    metrics: dict[str, Any],
    files: list[Path],
    validation: list[Encounter],
    train: list[Encounter],
    validation_fp: str,
) -> dict[str, Any]:
    from medcode.training.promotion import metric_value, promote
    from medcode.training.tracking import register_pack

    params: dict[str, Any] = {k: str(v) for k, v in asdict(options).items()}
    params["config"] = coder.config.to_json()
    tags = {"preset": options.preset, "model_version": coder.version}
    with tracker.run(f"train-{options.preset}", tags):
        tracker.params(params)
        tracker.metrics(metrics, prefix=f"{options.validation_split}.")
        if files:
            tracker.files([f for f in files if f.is_file()], "validation_report")
        logged = register_pack(tracker, pack, tracker.model_name)
    out: dict[str, Any] = {
        "registered_name": logged.name,
        "registered_version": logged.version,
        "run_id": logged.run_id,
    }
    if not validation:
        return out
    try:
        value = metric_value(metrics["tasks"] if "." in options.metric else metrics, options.metric)
    except KeyError:
        raise InvalidInputError(f"validation metric {options.metric!r} was not measured") from None
    champion_value = _remeasure_champion(tracker, logged.name, options, validation, train, validation_fp)
    decision = promote(
        tracker.client,
        logged.name,
        logged.version,
        value,
        metric=options.metric,
        tolerance=options.tolerance,
        fingerprint=validation_fp,
        champion_value=champion_value,
    )
    out["promotion"] = decision.to_json()
    return out


def _remeasure_champion(
    tracker: Tracker,
    name: str,
    options: TrainingOptions,
    validation: list[Encounter],
    train: list[Encounter],
    fingerprint: str,
) -> float | None:
    """The champion's metric on this validation set when its stored one was measured elsewhere."""
    from medcode.training.promotion import current_champion, metric_value

    champion = current_champion(tracker.client, name)
    if champion is None or (champion.fingerprint == fingerprint and champion.metric == options.metric):
        return None
    log.info("re-measuring champion version %s on this validation set", champion.version)
    try:
        coder = tracker.registry.load_model(f"models:/{name}/{champion.version}")
    except Exception as exc:  # an unloadable champion (missing, corrupt, unreadable) is replaced
        log.warning("champion version %s cannot be loaded (%s); it will be replaced", champion.version, exc)
        return None
    with tempfile.TemporaryDirectory(prefix="medcode-eval-") as tmp:
        report, _ = evaluate(coder, validation, train, options, Path(tmp))
    try:
        return metric_value(headline(report)["tasks"], options.metric)
    except KeyError:
        return None
