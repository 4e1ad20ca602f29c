"""The learning loop end to end, with a simulated coder: `medcode simulate-feedback`.

1. The train split is shuffled (seeded) and cut: `initial_fraction` trains the starting model (round 0),
   the rest arrives in `rounds` equal batches.
2. Each round, the serving champion suggests codes for the arriving encounters and they are submitted
   through the service's own storage and routing (SQLite in a temporary folder), queued with the
   strategy's priority ("fifo": arrival order; "uncertainty": most expected corrections first).
3. The simulated coder claims items in queue order, up to `review_fraction` of the round's arrivals,
   decides every code by the gold codes and finalizes.
4. The feedback is exported, merged with the starting corpus, a new model is fitted (`training.presets`,
   the one fit path) and evaluated on the FROZEN evaluation split (dev) against the champion; the
   promotion gate decides whether it serves the next round (`training.retrain`).
5. Each active-learning arm is compared with the FIFO arm reviewing the same share: the final champions'
   dev MAP difference with its paired bootstrap (`comparisons` in the JSON).

Steps 2 and 3 happen at a `FeedbackDesk`, a protocol this module states and the composition layer
implements with the real review service (`medcode.review_desk`: training does not import serving); the
caller passes a `DeskFactory`.

Every default model reads notes through one shared set of resources, so each note is read once for all
rounds and strategies (`PreparedCache`). Rounds use a reduced default-preset configuration (fewer folds and
boosting iterations) so that a round takes minutes on a CPU; the figures are for that configuration.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from medcode.data.feedback import FeedbackExample
from medcode.data.types import Encounter, Gold, Result
from medcode.evaluation.tracking import Tracker
from medcode.model.base import Coder, PresetConfig
from medcode.model.trained.coder import DefaultCoder
from medcode.training.active import priority_of
from medcode.training.feedback import TrainingSet
from medcode.training.options import TrainingOptions
from medcode.training.presets import (
    FitEnvironment,
    FitJob,
    PreparedCache,
    fit_model,
    no_progress,
    shared_notes,
    tqdm_progress,
)
from medcode.training.retrain import (
    Champion,
    Evaluation,
    FrozenEvaluation,
    RetrainConfig,
    RetrainOutcome,
    paired_difference,
    retrain,
)

if TYPE_CHECKING:
    from medcode.model.text.pipeline import TextPipeline

log = logging.getLogger(__name__)

Hints = Mapping[str, Sequence[tuple[str, str, int, int]]]
"""document id -> (task, code, start, end): corpus evidence spans located in the document text."""
PriorityFn = Callable[[Result], float]


class FeedbackDesk(Protocol):
    """A review service with a simulated coder at it: encounters go in, finalized reviews come out."""

    auto_accepted: int
    """Encounters the service auto-accepted so far."""

    def submit(
        self, encounter: Encounter, coder: Coder, priority_fn: PriorityFn, *, force_review: bool = False
    ) -> str:
        """Suggest with `coder`, store and route the encounter as the API does; its status."""
        ...

    def review(self, budget: int, *, progress: bool = False) -> int:
        """The simulated coder claims, decides and finalizes up to `budget` items in queue order."""
        ...

    def open_items(self) -> int: ...

    def export(self, exclude_encounter_ids: Iterable[str] = ()) -> list[FeedbackExample]: ...

    def review_stats(self) -> dict[str, Any]:
        """What the simulated coder did (accepted, rejected, replaced, added, refused...)."""
        ...

    def close(self) -> None: ...


class DeskFactory(Protocol):
    def __call__(self, name: str, gold: Mapping[str, Gold], hints: Hints) -> FeedbackDesk:
        """A new, empty desk called `name` whose coder decides by `gold`, with corpus evidence `hints`."""
        ...


@dataclass(frozen=True)
class Arm:
    """One simulated service: its review-queue order and the share of each round's arrivals reviewed."""

    strategy: str
    review_fraction: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.strategy}@{self.review_fraction:g}"


@dataclass
class SimulationConfig:
    training: TrainingOptions
    """Data, preset, fit options, gate (`metric`, `tolerance`); `limit` cuts the train split only."""
    rounds: int = 3
    initial_fraction: float = 0.4
    arms: tuple[Arm, ...] = ()
    """Queue strategy and review share of each simulated service (default: uncertainty, all reviewed)."""
    seed: int = 13
    eval_limit: int | None = None
    force_review: bool = False
    use_evidence: bool = True
    diagnosis_only: bool = False
    """Drop the procedure codes everywhere (a faster simulation of the diagnosis task alone)."""
    out: Path | None = None
    n_resamples: int = 1000
    threads: int | None = 1
    """OpenMP/BLAS threads (1: the ranker's per-note predictions stall under contention with more)."""
    progress: bool = True
    environment: FitEnvironment = field(default_factory=FitEnvironment)
    """Code-knowledge fallback, rules config and cache folder, resolved from the settings at the edge."""

    def __post_init__(self) -> None:
        if not self.arms:
            self.arms = (Arm("uncertainty", 1.0),)

    def to_json(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in {**asdict(self.training), **asdict(self)}.items()
            if k != "training"
        }


@dataclass
class RoundRow:
    round: int
    map: float
    map_ci: list[float]
    micro_f1: float | None
    procedure_map: float | None
    model_version: str
    train_encounters: int
    feedback_encounters: int
    arrived: int = 0
    auto_accepted: int = 0
    reviewed: int = 0
    queue_left: int = 0
    promoted: bool = False
    reason: str = ""
    champion_version: str = ""
    champion_map: float = 0.0
    delta_vs_round0: float = 0.0
    delta_ci: list[float] = field(default_factory=lambda: [0.0, 0.0])
    registered_version: str | None = None
    fit_seconds: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- reading notes once ------------------------------------------------------------------------------------


class CachedCoder:
    """A default model that reads notes through the cache (same results as `suggest`, each note once)."""

    def __init__(self, coder: DefaultCoder, cache: PreparedCache) -> None:
        if coder.resources is not cache.resources:
            raise ValueError("the model does not share the cache's resources")
        self.coder = coder
        self.cache = cache
        self.metrics = coder.metrics
        self.training_data = coder.training_data

    @property
    def version(self) -> str:
        return self.coder.version

    @property
    def code_set_version(self) -> str:
        return self.coder.code_set_version

    @property
    def calibrated(self) -> bool:
        return self.coder.calibrated

    @property
    def config(self) -> PresetConfig:
        return self.coder.config

    @property
    def pipeline(self) -> TextPipeline:
        return self.coder.pipeline

    def save(self, path: Path) -> Path:
        return self.coder.save(path)

    def suggest(self, encounter: Encounter) -> Result:
        return self.coder.suggest_prepared(self.cache.get(encounter))


class Predictions:
    """Predictions on the frozen set, memoised per model version (one model is scored once)."""

    def __init__(self, cache: PreparedCache | None, progress: bool) -> None:
        self.cache = cache
        self.progress = progress
        self._done: dict[str, list[Result]] = {}

    def served(self, coder: Coder) -> Coder:
        """The model reading notes through the cache when it shares the cache's resources."""
        if (
            self.cache is not None
            and isinstance(coder, DefaultCoder)
            and coder.resources is self.cache.resources
        ):
            return CachedCoder(coder, self.cache)
        return coder

    def __call__(self, coder: Coder, encounters: Sequence[Encounter]) -> list[Result]:
        from tqdm import tqdm

        version = str(coder.version)
        if version not in self._done:
            served = self.served(coder)
            self._done[version] = [
                served.suggest(e)
                for e in tqdm(encounters, desc=f"evaluate {version}", leave=False, disable=not self.progress)
            ]
        return self._done[version]


class MemoFit:
    """The one fit path (`training.presets.fit_model`) on a round's training set, with the shared notes;
    the same training data gives back the same model."""

    def __init__(self, config: SimulationConfig, notes: PreparedCache | None) -> None:
        self.config = config
        self.notes = notes
        self._fitted: dict[str, Coder] = {}

    def __call__(self, training: TrainingSet) -> Coder:
        key = f"{training.fingerprint}:{sorted(training.evidence.items())!r}"
        if key not in self._fitted:
            options = self.config.training
            job = FitJob.of_training_set(
                training,
                options,
                progress=tqdm_progress if self.config.progress else no_progress,
                notes=self.notes,
                environment=self.config.environment,
            )
            self._fitted[key] = fit_model(options, job)
        return self._fitted[key]


# -- the simulation ------------------------------------------------------------------------------------------


def split_train(
    train: Sequence[Encounter], initial_fraction: float, rounds: int, seed: int
) -> tuple[list[Encounter], list[list[Encounter]]]:
    """(starting corpus, arrival batches): a seeded shuffle, then the first share and equal batches."""
    if not 0 < initial_fraction < 1:
        from medcode.data.errors import InvalidInputError

        raise InvalidInputError("the initial fraction must lie between 0 and 1")
    order = np.random.default_rng(seed).permutation(len(train))
    shuffled = [train[int(i)] for i in order]
    n_initial = max(4, round(len(train) * initial_fraction))
    rest = shuffled[n_initial:]
    batches = [list(b) for b in np.array_split(np.arange(len(rest)), max(1, rounds))]
    return shuffled[:n_initial], [[rest[int(i)] for i in b] for b in batches]


def load_data(config: SimulationConfig) -> tuple[list[Encounter], list[Encounter]]:
    from medcode.data.errors import InvalidInputError

    options = config.training
    train = options.coded_encounters(options.train_split)
    evaluation = options.coded_encounters(options.validation_split)
    if options.limit:
        train = train[: options.limit]
    if config.eval_limit:
        evaluation = evaluation[: config.eval_limit]
    if config.diagnosis_only:
        train, evaluation = _diagnoses_only(train), _diagnoses_only(evaluation)
    if len(train) < 8 or not evaluation:
        raise InvalidInputError(
            f"{options.dataset}: the simulation needs at least 8 coded training encounters and a coded "
            f"{options.validation_split} split"
        )
    return train, evaluation


def _diagnoses_only(encounters: Sequence[Encounter]) -> list[Encounter]:
    return [
        e.model_copy(update={"gold": Gold(diagnosis=list(e.gold.diagnosis))})
        for e in encounters
        if e.gold is not None and e.gold.diagnosis
    ]


def corpus_hints(options: TrainingOptions) -> Hints:
    """CodiEsp-X evidence located in the English notes (the simulated coder's evidence for added codes)."""
    if options.dataset != "codiesp":
        return {}
    from medcode.data.errors import DatasetNotFoundError, InvalidInputError
    from medcode.training.codiesp_evidence import codiesp_sentence_evidence

    try:
        return codiesp_sentence_evidence(Path(options.data_dir), options.train_split)
    except (DatasetNotFoundError, InvalidInputError, OSError) as exc:  # hints are optional
        log.warning("no CodiEsp-X evidence for the simulated coder: %s", exc)
        return {}


def simulate(config: SimulationConfig, desks: DeskFactory, tracker: Tracker | None = None) -> dict[str, Any]:
    """Run every arm of `config` at desks from `desks` and return the JSON of `medcode simulate-feedback`.

    With a `tracker`, every round's retraining is logged and registered under
    `<tracker's model>-simulation-<arm>` (never the served model's name)."""
    from threadpoolctl import threadpool_limits

    if config.threads is None:
        return _simulate(config, desks, tracker)
    with threadpool_limits(limits=config.threads):
        return _simulate(config, desks, tracker)


def _simulate(config: SimulationConfig, desks: DeskFactory, tracker: Tracker | None) -> dict[str, Any]:
    started = time.perf_counter()
    options = config.training
    train, evaluation = load_data(config)
    initial, batches = split_train(train, config.initial_fraction, config.rounds, config.seed)
    frozen = FrozenEvaluation.of(
        evaluation, dataset=options.dataset, split=options.validation_split, data_dir=Path(options.data_dir)
    )
    log.info(
        "simulation: %d starting encounters, %d arriving in %d rounds, %d evaluation encounters",
        len(initial),
        sum(len(b) for b in batches),
        len(batches),
        len(frozen.encounters),
    )
    notes = shared_notes(options, initial, config.environment)
    if notes is not None:
        notes.warm(frozen.encounters, "reading evaluation notes", config.progress)
        notes.warm(train, "reading training notes", config.progress)
    fit = MemoFit(config, notes)
    predict = Predictions(notes, config.progress)
    hints = corpus_hints(options)
    human_gold = {e.encounter_id: e.gold for e in train if e.gold is not None}
    runs: dict[Arm, ArmRun] = {}
    for arm in config.arms:
        desk = desks(arm.label.replace("@", "-"), human_gold, hints)
        try:
            runs[arm] = run_arm(arm, config, initial, batches, frozen, fit, predict, desk, tracker)
        finally:
            desk.close()
    arms = {arm.label: run.summary for arm, run in runs.items()}
    primary = arms[config.arms[0].label]
    out: dict[str, Any] = {
        "dataset": options.dataset,
        "eval_split": options.validation_split,
        "strategy": config.arms[0].strategy,
        "review_fraction": config.arms[0].review_fraction,
        "rounds": primary["rounds"],
        "promoted": primary["promoted"],
        "improvement": primary["improvement"],
        "strategies": arms,
        "comparisons": compare_arms(runs, frozen, config),
        "config": {
            **config.to_json(),
            "initial_encounters": len(initial),
            "arriving_encounters": sum(len(b) for b in batches),
            "eval_encounters": len(frozen.encounters),
            "eval_fingerprint": frozen.fingerprint,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    if config.out is not None:
        out["plot"] = str(write_outputs(out, Path(config.out)))
    return out


@dataclass
class ArmRun:
    """One arm's JSON and the evaluation of its last champion (for comparisons between arms)."""

    summary: dict[str, Any]
    final: Evaluation


def compare_arms(
    runs: dict[Arm, ArmRun], frozen: FrozenEvaluation, config: SimulationConfig
) -> list[dict[str, Any]]:
    """Each active-learning arm against the FIFO arm reviewing the same share: the final champions' dev
    MAP difference (active - FIFO) with its paired bootstrap over the evaluation documents."""
    out: list[dict[str, Any]] = []
    for arm, run in runs.items():
        if arm.strategy == "fifo":
            continue
        fifo = next(
            (r for a, r in runs.items() if a.strategy == "fifo" and a.review_fraction == arm.review_fraction),
            None,
        )
        if fifo is None:
            continue
        diff = paired_difference(
            frozen, fifo.final, run.final, n_resamples=config.n_resamples, seed=config.seed
        )
        out.append(
            {
                "active": arm.label,
                "fifo": Arm("fifo", arm.review_fraction).label,
                "active_map": run.final.map_interval.value,
                "fifo_map": fifo.final.map_interval.value,
                "delta": diff.delta,
                "delta_ci": [diff.low, diff.high],
                "p_value": diff.p_value,
            }
        )
    return out


def run_arm(
    arm: Arm,
    config: SimulationConfig,
    initial: Sequence[Encounter],
    batches: Sequence[Sequence[Encounter]],
    frozen: FrozenEvaluation,
    fit: MemoFit,
    predict: Predictions,
    desk: FeedbackDesk,
    tracker: Tracker | None,
) -> ArmRun:
    """Round 0 and the feedback rounds of one simulated service."""
    strategy = arm.strategy
    priority = priority_of(strategy)
    tag = f"{strategy}-{round(arm.review_fraction * 100)}"
    retrain_config = RetrainConfig(
        metric=config.training.metric,
        tolerance=config.training.tolerance,
        registered_name=f"{tracker.model_name}-simulation-{tag}" if tracker else None,
        use_evidence=config.use_evidence,
        n_resamples=config.n_resamples,
        seed=config.seed,
        params={"strategy": strategy, "review_fraction": arm.review_fraction},
    )
    t0 = time.perf_counter()
    retrain_config.run_name = f"simulation-{tag}-round-0"
    first = retrain(initial, [], frozen, fit, retrain_config, champion=None, tracker=tracker, predict=predict)
    champion = Champion(predict.served(first.coder), first.candidate, first.registered_version)
    round0 = first.candidate
    rows = [_row(0, first, champion, round0, None, time.perf_counter() - t0)]
    promoted = [0]
    _checkpoint(config, arm, rows)
    for number, batch in enumerate(batches, start=1):
        t0 = time.perf_counter()
        auto_before = desk.auto_accepted
        for encounter in _bar(batch, f"round {number}: submit", config.progress):
            desk.submit(encounter, champion.coder, priority, force_review=config.force_review)
        budget = round(len(batch) * arm.review_fraction)
        reviewed = desk.review(budget, progress=config.progress)
        feedback = desk.export(exclude_encounter_ids=frozen.guard.ids)
        retrain_config.run_name = f"simulation-{tag}-round-{number}"
        outcome = retrain(
            initial,
            feedback,
            frozen,
            fit,
            retrain_config,
            champion=champion,
            tracker=tracker,
            predict=predict,
        )
        if outcome.promote:
            champion = Champion(predict.served(outcome.coder), outcome.candidate, outcome.registered_version)
            promoted.append(number)
        traffic = {
            "arrived": len(batch),
            "auto_accepted": desk.auto_accepted - auto_before,
            "reviewed": reviewed,
            "queue_left": desk.open_items(),
        }
        rows.append(
            _row(number, outcome, champion, round0, traffic, time.perf_counter() - t0, frozen, config)
        )
        log.info("round %d (%s): %s", number, arm.label, json.dumps(rows[-1].to_json(), default=str))
        _checkpoint(config, arm, rows)
    final = champion.evaluation
    assert final is not None
    diff = paired_difference(frozen, round0, final, n_resamples=config.n_resamples, seed=config.seed)
    improvement = {
        "before": round0.map_interval.value,
        "before_ci": [round0.map_interval.low, round0.map_interval.high],
        "after": final.map_interval.value,
        "after_ci": [final.map_interval.low, final.map_interval.high],
        "after_version": final.version,
        "delta": diff.delta,
        "delta_ci": [diff.low, diff.high],
        "p_value": diff.p_value,
        "above_before_ci": final.map_interval.value > round0.map_interval.high,
        "paired_ci_above_zero": diff.low > 0,
    }
    summary = {
        "strategy": strategy,
        "review_fraction": arm.review_fraction,
        "rounds": [r.to_json() for r in rows],
        "promoted": promoted,
        "improvement": improvement,
        "review": desk.review_stats(),
    }
    return ArmRun(summary, final)


def _row(
    number: int,
    outcome: RetrainOutcome,
    champion: Champion,
    round0: Evaluation,
    traffic: dict[str, int] | None,
    seconds: float,
    frozen: FrozenEvaluation | None = None,
    config: SimulationConfig | None = None,
) -> RoundRow:
    cand = outcome.candidate
    champion_eval = champion.evaluation
    assert champion_eval is not None
    delta, ci = 0.0, [0.0, 0.0]
    if frozen is not None and config is not None:
        diff = paired_difference(frozen, round0, cand, n_resamples=config.n_resamples, seed=config.seed)
        delta, ci = diff.delta, [diff.low, diff.high]
    return RoundRow(
        round=number,
        map=cand.map_interval.value,
        map_ci=[cand.map_interval.low, cand.map_interval.high],
        micro_f1=cand.tasks.get("diagnosis", {}).get("micro_f1"),
        procedure_map=cand.tasks.get("procedure", {}).get("map"),
        model_version=cand.version,
        train_encounters=len(outcome.training.encounters),
        feedback_encounters=len(outcome.training.feedback_ids),
        promoted=outcome.promote,
        reason=outcome.reason,
        champion_version=champion_eval.version,
        champion_map=champion_eval.map_interval.value,
        delta_vs_round0=delta,
        delta_ci=ci,
        registered_version=outcome.registered_version,
        fit_seconds=round(outcome.fit_seconds, 1),
        seconds=round(seconds, 1),
        **(traffic or {}),
    )


def _checkpoint(config: SimulationConfig, arm: Arm, rows: Sequence[RoundRow]) -> None:
    """The rounds so far, in `out/rounds-<arm>.json` (a long simulation can be followed, or resumed by eye)."""
    if config.out is None:
        return
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    name = arm.label.replace("@", "-")
    (out / f"rounds-{name}.json").write_text(json.dumps([r.to_json() for r in rows], indent=2, default=str))


def _bar(items: Sequence[Encounter], desc: str, progress: bool) -> Sequence[Encounter]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="note", leave=False, disable=not progress)  # type: ignore[return-value]


# -- outputs -------------------------------------------------------------------------------------------------


def write_outputs(summary: dict[str, Any], out: Path) -> Path:
    """simulation.json and learning_loop.png (MAP with its 95% interval and micro F1, by round)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulation.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return plot_rounds(summary["strategies"], out / "learning_loop.png")


def plot_rounds(strategies: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_map, ax_f1) = plt.subplots(1, 2, figsize=(10, 4))
    for offset, (name, data) in enumerate(strategies.items()):
        rows = data["rounds"]
        color = f"C{offset}"
        x = np.array([r["round"] for r in rows], dtype=float) + 0.05 * offset
        y = np.array([r["map"] for r in rows])
        low = y - np.array([r["map_ci"][0] for r in rows])
        high = np.array([r["map_ci"][1] for r in rows]) - y
        ax_map.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, color=color, label=f"{name} candidate")
        ax_map.plot(
            x,
            [r["champion_map"] for r in rows],
            linestyle="--",
            color=color,
            alpha=0.6,
            label=f"{name} champion",
        )
        ax_f1.plot(x, [r["micro_f1"] or 0.0 for r in rows], marker="o", color=color, label=name)
        ticks = [r["round"] for r in rows]
    for ax in (ax_map, ax_f1):
        ax.set_xticks(ticks)
    ax_map.set_title("dev diagnosis MAP by round (95% bootstrap CI)")
    ax_map.set_xlabel("feedback round")
    ax_map.set_ylabel("MAP")
    ax_map.legend(fontsize=8)
    ax_f1.set_title("dev diagnosis micro F1 by round")
    ax_f1.set_xlabel("feedback round")
    ax_f1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
