"""Retraining with coder feedback, behind a promotion gate: merge -> fit -> evaluate -> gate.

    frozen = FrozenEvaluation.of(dev_encounters, dataset="codiesp", split="dev")
    outcome = retrain(base_train, feedback_examples, frozen, fit, RetrainConfig(tolerance=0.0), tracker=t)

- merge: `training.feedback.merge_feedback` (latest decision wins, negatives, evaluation encounters kept out);
- fit: any `Fit` (training set -> Coder); `preset_fit(options)` is the one fit path
  (`training.presets.fit_model`) on the merged set;
- evaluate: the candidate and the champion on the same FROZEN evaluation set (its fingerprint is checked
  and logged), MAP with its bootstrap interval and the paired bootstrap of the difference;
- gate: `training.promotion.promote` — the champion alias moves only when the candidate is not worse than
  the champion by more than `tolerance` on `metric`.

With a `Tracker` (MLflow), the whole retraining is one parent run with one nested run per step, each tagged with the
training-data, feedback and evaluation fingerprints; the candidate is registered (a version of
`registered_name`) before the gate decides, so a refused model stays inspectable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcode.data.feedback import FeedbackExample
from medcode.data.types import Encounter, Result, Task
from medcode.evaluation.bootstrap import Interval, PairedDifference
from medcode.evaluation.scoring import CodeFilter
from medcode.evaluation.tracking import Tracker
from medcode.model.base import Coder
from medcode.model.registry import Registry
from medcode.training.feedback import EvaluationGuard, TrainingSet, merge_feedback
from medcode.training.options import TrainingOptions
from medcode.training.presets import FitEnvironment
from medcode.training.promotion import PromotionDecision

log = logging.getLogger(__name__)

Fit = Callable[[TrainingSet], Coder]
Predict = Callable[[Coder, Sequence[Encounter]], list[Result]]


# -- the frozen evaluation set --------------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenEvaluation:
    """The evaluation encounters every model of a retraining is measured on, fixed once."""

    encounters: tuple[Encounter, ...]
    dataset: str
    split: str
    fingerprint: str
    guard: EvaluationGuard
    valid: dict[Task, CodeFilter | None]

    @classmethod
    def of(
        cls, encounters: Sequence[Encounter], *, dataset: str, split: str, data_dir: Path | None = None
    ) -> FrozenEvaluation:
        from medcode.evaluation.runner import valid_code_filters
        from medcode.training.default import training_fingerprint

        kept = tuple(e for e in encounters if e.gold is not None)
        if not kept:
            from medcode.data.errors import InvalidInputError

            raise InvalidInputError(f"no coded encounters in the evaluation set {dataset} {split}")
        return cls(
            encounters=kept,
            dataset=dataset,
            split=split,
            fingerprint=training_fingerprint(kept),
            guard=EvaluationGuard.of(kept),
            valid=valid_code_filters(kept, data_dir),
        )

    def check(self) -> None:
        """Fail when the evaluation encounters changed since the set was frozen."""
        from medcode.training.default import training_fingerprint

        if training_fingerprint(self.encounters) != self.fingerprint:
            raise RuntimeError("the frozen evaluation set changed during retraining")


@dataclass
class Evaluation:
    """One model on the frozen evaluation set."""

    version: str
    tasks: dict[str, dict[str, Any]]
    results: list[Result]
    map_interval: Interval
    seconds: float = 0.0

    def metric(self, name: str) -> float:
        from medcode.training.promotion import metric_value

        return metric_value(self.tasks, name)

    def summary(self) -> dict[str, Any]:
        diagnosis = self.tasks.get("diagnosis", {})
        procedure = self.tasks.get("procedure", {})
        return {
            "version": self.version,
            "map": self.map_interval.value,
            "map_ci": [self.map_interval.low, self.map_interval.high],
            "micro_f1": diagnosis.get("micro_f1"),
            "micro_precision": diagnosis.get("micro_precision"),
            "micro_recall": diagnosis.get("micro_recall"),
            "p_at_5": diagnosis.get("p_at_5"),
            "ece": diagnosis.get("ece"),
            "procedure_map": procedure.get("map"),
        }


def predict_all(coder: Coder, encounters: Sequence[Encounter]) -> list[Result]:
    from medcode.evaluation.runner import run_coder

    return run_coder(coder, encounters, desc=f"evaluate {coder.version}", progress=True).results


def evaluate_frozen(
    coder: Coder,
    frozen: FrozenEvaluation,
    *,
    predict: Predict = predict_all,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Run `coder` on the frozen set; every task's figures and the diagnosis MAP bootstrap interval."""
    from medcode.evaluation.compare import map_interval
    from medcode.evaluation.report import evaluate_results

    started = time.perf_counter()
    results = predict(coder, frozen.encounters)
    tasks, _ = evaluate_results(frozen.encounters, results, valid=frozen.valid)
    numeric = {
        task: {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        for task, row in tasks.items()
    }
    interval = map_interval(
        frozen.encounters,
        results,
        "diagnosis",
        valid=frozen.valid.get("diagnosis"),
        n_resamples=n_resamples,
        seed=seed,
    )
    return Evaluation(str(coder.version), numeric, results, interval, time.perf_counter() - started)


def paired_difference(
    frozen: FrozenEvaluation, a: Evaluation, b: Evaluation, *, n_resamples: int = 1000, seed: int = 0
) -> PairedDifference:
    """MAP(b) - MAP(a) on the frozen set, with its paired-bootstrap interval."""
    from medcode.evaluation.compare import paired_map_difference

    return paired_map_difference(
        frozen.encounters,
        a.results,
        b.results,
        "diagnosis",
        valid=frozen.valid.get("diagnosis"),
        n_resamples=n_resamples,
        seed=seed,
    )


# -- configuration and outcome --------------------------------------------------------------------------


@dataclass
class RetrainConfig:
    metric: str = "diagnosis.map"
    tolerance: float = 0.0
    """How much worse than the champion (on `metric`) a candidate may be and still be promoted."""
    registered_name: str | None = None
    """Registered model name (default: the tracker's, MEDCODE_REGISTERED_MODEL)."""
    run_name: str = "retrain"
    use_evidence: bool = True
    n_resamples: int = 1000
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    """Extra parameters logged with the fit (e.g. the trainer's configuration)."""


@dataclass
class Champion:
    """The model serving now, in memory (the simulation) with its evaluation on the frozen set if known."""

    coder: Coder
    evaluation: Evaluation | None = None
    registered_version: str | None = None


ChampionSpec = Champion | Registry | None
"""A Champion; a Registry: its registered champion (loaded and re-measured); None: no champion, the
candidate is the first model (it is promoted)."""


@dataclass
class RetrainOutcome:
    training: TrainingSet
    coder: Coder
    candidate: Evaluation
    champion: Evaluation | None
    promote: bool
    reason: str
    difference: PairedDifference | None
    registered_version: str | None = None
    run_id: str | None = None
    fit_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        diff = self.difference
        return {
            "candidate": self.candidate.summary(),
            "champion": self.champion.summary() if self.champion else None,
            "promoted": self.promote,
            "reason": self.reason,
            "delta_vs_champion": None
            if diff is None
            else {"delta": diff.delta, "ci": [diff.low, diff.high], "p_value": diff.p_value},
            "training": self.training.summary(),
            "registered_version": self.registered_version,
            "run_id": self.run_id,
            "fit_seconds": round(self.fit_seconds, 1),
        }


# -- the retraining ---------------------------------------------------------------------------------------


def feedback_fingerprint(examples: Sequence[FeedbackExample]) -> str:
    digest = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: (e.encounter_id, e.item_id)):
        digest.update(f"{ex.encounter_id}|{ex.item_id}|{ex.finalized_at.isoformat()}\n".encode())
    return digest.hexdigest()


def retrain(
    base: Sequence[Encounter],
    feedback: Sequence[FeedbackExample],
    frozen: FrozenEvaluation,
    fit: Fit,
    config: RetrainConfig | None = None,
    *,
    champion: ChampionSpec = None,
    tracker: Tracker | None = None,
    predict: Predict = predict_all,
) -> RetrainOutcome:
    """Merge, fit, evaluate against the champion on the frozen set, and apply the promotion gate.

    With a `tracker`, every step is an MLflow run, the candidate is registered and the gate moves the
    champion alias of `config.registered_name` (default: the tracker's model); without one, the gate only
    decides.
    """
    config = config or RetrainConfig()
    name = config.registered_name or (tracker.model_name if tracker else "")
    fingerprints = {
        "feedback_fingerprint": feedback_fingerprint(feedback),
        "eval_fingerprint": frozen.fingerprint,
    }
    with _maybe(tracker, config.run_name, {"step": "retrain", **fingerprints}):
        # 1. merge
        with _maybe(tracker, "merge", {"step": "merge", **fingerprints}):
            training = merge_feedback(
                base, feedback, evaluation=frozen.guard, use_evidence=config.use_evidence
            )
            summary = training.summary()
            fingerprints["data_fingerprint"] = training.fingerprint
            if tracker:
                tracker.tags(fingerprints)
                tracker.metrics(summary)
                tracker.json(summary, "training_set.json")
        if tracker:
            tracker.tags(fingerprints)  # the parent run too
        # 2. fit (and register)
        with _maybe(tracker, "fit", {"step": "fit", **fingerprints}):
            started = time.perf_counter()
            coder = fit(training)
            fit_seconds = time.perf_counter() - started
            registered = None
            if tracker:
                tracker.params({"encounters": len(training.encounters), **config.params})
                tracker.metrics({"fit_seconds": fit_seconds})
                registered = _register(tracker, coder, name, fingerprints["data_fingerprint"])
        # 3. evaluate candidate and champion on the frozen set
        with _maybe(tracker, "evaluate", {"step": "evaluate", **fingerprints}):
            frozen.check()
            candidate = evaluate_frozen(
                coder, frozen, predict=predict, n_resamples=config.n_resamples, seed=config.seed
            )
            champion_eval = _champion_evaluation(champion, name, frozen, config, predict)
            difference = (
                paired_difference(
                    frozen, champion_eval, candidate, n_resamples=config.n_resamples, seed=config.seed
                )
                if champion_eval is not None
                else None
            )
            if tracker:
                tracker.metrics(_flat("candidate", candidate))
                if champion_eval is not None:
                    tracker.metrics(_flat("champion", champion_eval))
                if difference is not None:
                    tracker.metrics(
                        {
                            "delta_map": difference.delta,
                            "delta_map_low": difference.low,
                            "delta_map_high": difference.high,
                        }
                    )
        # 4. gate
        with _maybe(tracker, "gate", {"step": "gate", **fingerprints}):
            value = candidate.metric(config.metric)
            champion_value = champion_eval.metric(config.metric) if champion_eval is not None else None
            decision = _gate(
                value, champion_value, champion is None, config, tracker, name, registered, frozen.fingerprint
            )
            promote, reason = decision.promote, decision.reason
            if tracker:
                tracker.params({"metric": config.metric, "tolerance": config.tolerance})
                tracker.metrics({"promoted": float(promote), "candidate_value": value})
                tracker.tags({"decision": reason[:250]})
        run_id = _root_run_id() if tracker else None
    log.info("%s %s: %s", "promoted" if promote else "kept the champion;", coder.version, reason)
    return RetrainOutcome(
        training=training,
        coder=coder,
        candidate=candidate,
        champion=champion_eval,
        promote=promote,
        reason=reason,
        difference=difference,
        registered_version=registered,
        run_id=run_id,
        fit_seconds=fit_seconds,
    )


def _champion_evaluation(
    champion: ChampionSpec,
    name: str,
    frozen: FrozenEvaluation,
    config: RetrainConfig,
    predict: Predict,
) -> Evaluation | None:
    if champion is None:
        return None
    if isinstance(champion, Champion):
        if champion.evaluation is None:
            champion.evaluation = evaluate_frozen(
                champion.coder, frozen, predict=predict, n_resamples=config.n_resamples, seed=config.seed
            )
        return champion.evaluation
    coder = load_registered_champion(champion, name or champion.model_name)
    if coder is None:
        return None
    return evaluate_frozen(coder, frozen, predict=predict, n_resamples=config.n_resamples, seed=config.seed)


def load_registered_champion(registry: Registry, name: str) -> Coder | None:
    """The registry's champion of `name` (None when there is none or it cannot be loaded)."""
    from medcode.training.promotion import current_champion

    if not registry.exists():
        return None
    info = current_champion(registry.client(), name)
    if info is None:
        return None
    try:
        return registry.load_model(f"models:/{name}/{info.version}")
    except Exception as exc:  # an unloadable champion is measured as absent: the candidate replaces it
        log.warning("champion version %s cannot be loaded (%s); it will be replaced", info.version, exc)
        return None


def _gate(
    value: float,
    champion_value: float | None,
    first_model: bool,
    config: RetrainConfig,
    tracker: Tracker | None,
    name: str,
    registered: str | None,
    eval_fingerprint: str,
) -> PromotionDecision:
    from medcode.training.promotion import decide, promote

    if tracker and registered:
        return promote(
            tracker.client,
            name,
            registered,
            value,
            metric=config.metric,
            tolerance=config.tolerance,
            fingerprint=eval_fingerprint,
            champion_value=champion_value,
            first_model=first_model,
        )
    if first_model:
        reason = "first model: nothing to compare against"
        return PromotionDecision(True, reason, config.metric, value, None, None, config.tolerance)
    return decide(value, champion_value, metric=config.metric, tolerance=config.tolerance)


def _flat(prefix: str, evaluation: Evaluation) -> dict[str, float]:
    from medcode.evaluation.tracking import flatten

    out = flatten(evaluation.tasks, f"{prefix}.")
    out[f"{prefix}.diagnosis.map_low"] = evaluation.map_interval.low
    out[f"{prefix}.diagnosis.map_high"] = evaluation.map_interval.high
    return out


# -- MLflow ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _maybe(tracker: Tracker | None, name: str, tags: dict[str, str]) -> Iterator[None]:
    if tracker is None:
        yield
        return
    with tracker.run(name, tags):
        yield


def _root_run_id() -> str | None:
    """The id of the active MLflow run (called in the retraining's parent run)."""
    import mlflow

    run = mlflow.active_run()
    return str(run.info.run_id) if run is not None else None


def _register(tracker: Tracker, coder: Coder, name: str, data_fingerprint: str) -> str:
    """Save the candidate's pack, register it under `name`, and tag it with its training data."""
    from medcode.training.tracking import register_pack

    with tempfile.TemporaryDirectory(prefix="medcode-retrain-") as tmp:
        logged = register_pack(tracker, coder.save(Path(tmp) / "pack"), name)
    tracker.client.set_model_version_tag(
        logged.name, logged.version, "training_fingerprint", data_fingerprint
    )
    return logged.version


def dumps(outcome: RetrainOutcome) -> str:
    return json.dumps(outcome.to_json(), sort_keys=True, default=str)


# -- fitting a preset from a training set -------------------------------------------------------------------


def preset_fit(options: TrainingOptions, *, environment: FitEnvironment | None = None) -> Fit:
    """A Fit for `medcode retrain`: `options.preset` fitted on the merged set through the one fit path
    (`training.presets.fit_model`), with the feedback's evidence spans."""
    from medcode.training.presets import FitJob, fit_model, tqdm_progress

    def fit(training: TrainingSet) -> Coder:
        job = FitJob.of_training_set(training, options, progress=tqdm_progress, environment=environment)
        return fit_model(options, job)

    return fit
