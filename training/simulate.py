"""The learning loop end to end, with a simulated coder: `medcode simulate-feedback`.

1. The train split is shuffled (seeded) and cut: `initial_fraction` trains the starting model (round 0),
   the rest arrives in `rounds` equal batches.
2. Each round, the serving champion suggests codes for the arriving encounters and they are submitted
   through the service's own storage and routing (SQLite in a temporary folder), queued with the
   strategy's priority ("fifo": arrival order; "uncertainty": most expected corrections first).
3. The simulated coder (`training.review_desk`) claims items in queue order, up to `review_fraction` of
   the round's arrivals, decides every code by the gold codes and finalizes.
4. The feedback is exported (`serving.feedback.export_feedback`), merged with the starting corpus, a new
   model is fitted and evaluated on the FROZEN evaluation split (dev) against the champion; the promotion
   gate decides whether it serves the next round (`training.retrain`).
5. Each active-learning arm is compared with the FIFO arm reviewing the same share: the final champions'
   dev MAP difference with its paired bootstrap (`comparisons` in the JSON).

Every model reads notes through one shared set of resources, so each note is read once for all rounds
and strategies (`PreparedCache`). Rounds use a reduced default-preset configuration (fewer folds and
boosting iterations) so that a round takes minutes on a CPU; the figures are for that configuration.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medcode.data.types import Encounter, Result
from medcode.model.base import Coder
from medcode.training.active import priority_of
from medcode.training.feedback import text_key
from medcode.training.retrain import (
    Champion,
    Evaluation,
    FrozenEvaluation,
    RetrainConfig,
    RetrainOutcome,
    paired_difference,
    retrain,
)
from medcode.training.review_desk import Hints, ReviewDesk, SimulatedCoder, gold_of

log = logging.getLogger(__name__)


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
    dataset: str
    data_dir: Path
    rounds: int = 3
    initial_fraction: float = 0.4
    arms: tuple[Arm, ...] = ()
    """Queue strategy and review share of each simulated service (default: uncertainty, all reviewed)."""
    seed: int = 13
    train_split: str = "train"
    eval_split: str = "dev"
    limit: int | None = None
    """Use only the first N training encounters (quick runs)."""
    eval_limit: int | None = None
    dense: bool = True
    folds: int = 3
    ranker_max_iter: int = 150
    metric: str = "diagnosis.map"
    tolerance: float = 0.0
    mlflow: bool = True
    force_review: bool = False
    use_evidence: bool = True
    diagnosis_only: bool = False
    """Drop the procedure codes everywhere (a faster simulation of the diagnosis task alone)."""
    knowledge_dir: Path | None = None
    out: Path | None = None
    n_resamples: int = 1000
    threads: int | None = 1
    """OpenMP/BLAS threads (1: the ranker's per-note predictions stall under contention with more)."""
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.arms:
            self.arms = (Arm("uncertainty", 1.0),)


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


class PreparedCache:
    """Each note read once (mentions, sentences, vectors, candidates) for every model sharing `resources`."""

    def __init__(self, resources: Any, extractor: Any) -> None:
        self.resources = resources
        self.extractor = extractor
        self._items: dict[tuple[str, str], Any] = {}

    def get(self, encounter: Encounter) -> Any:
        key = (encounter.encounter_id, text_key(encounter))
        found = self._items.get(key)
        if found is None:
            found = self.resources.prepare(encounter.model_copy(update={"gold": None}), self.extractor)
            self._items[key] = found
        return found

    def warm(
        self, encounters: Sequence[Encounter], desc: str, progress: bool = True, chunk: int = 64
    ) -> None:
        """Read the notes not read yet, `chunk` at a time with batched encoding (`prepare_many`) when the
        resources offer it: the same result as `get` one by one, several times faster."""
        from tqdm import tqdm

        todo: dict[tuple[str, str], Encounter] = {}
        for encounter in encounters:
            key = (encounter.encounter_id, text_key(encounter))
            if key not in self._items:
                todo.setdefault(key, encounter.model_copy(update={"gold": None}))
        many = getattr(self.resources, "prepare_many", None)
        keys = list(todo)
        with tqdm(total=len(keys), desc=desc, unit="note", leave=False, disable=not progress) as bar:
            for start in range(0, len(keys), chunk):
                part = keys[start : start + chunk]
                notes = [todo[k] for k in part]
                if many is not None:
                    prepared = many(notes, self.extractor)
                else:
                    prepared = [self.resources.prepare(n, self.extractor) for n in notes]
                self._items.update(zip(part, prepared, strict=True))
                bar.update(len(part))


class CachedCoder:
    """A default model that reads notes through the cache (same results as `suggest`, each note once)."""

    def __init__(self, coder: Any, cache: PreparedCache) -> None:
        if getattr(coder, "resources", None) is not cache.resources:
            raise ValueError("the model does not share the cache's resources")
        self.coder = coder
        self.cache = cache

    @property
    def version(self) -> str:
        return str(self.coder.version)

    @property
    def code_set_version(self) -> str:
        return str(self.coder.code_set_version)

    @property
    def training_data(self) -> dict[str, Any]:
        return dict(getattr(self.coder, "training_data", {}) or {})

    def suggest(self, encounter: Encounter) -> Result:
        result: Result = self.coder.suggest_prepared(self.cache.get(encounter))
        return result


class Predictions:
    """Predictions on the frozen set, memoised per model version (one model is scored once)."""

    def __init__(self, cache: PreparedCache, progress: bool) -> None:
        self.cache = cache
        self.progress = progress
        self._done: dict[str, list[Result]] = {}

    def served(self, coder: Coder) -> Coder:
        if isinstance(coder, CachedCoder):
            return coder
        if getattr(coder, "resources", None) is self.cache.resources:
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
    """Fit the default preset on a training set; the same training data gives back the same model."""

    def __init__(self, config: SimulationConfig, cache: PreparedCache, model_config: Any) -> None:
        self.config = config
        self.cache = cache
        self.model_config = model_config
        self._fitted: dict[str, Coder] = {}

    def __call__(self, training: Any) -> Coder:
        from medcode.training.default import fit_default

        key = f"{training.fingerprint}:{sorted(training.evidence.items())!r}"
        if key in self._fitted:
            return self._fitted[key]
        prepared = [self.cache.get(e) for e in training.encounters]
        coder, _ = fit_default(
            training.encounters,
            self.cache.resources.knowledge,
            self.model_config,
            extractor=self.cache.extractor,
            resources=self.cache.resources,
            prepared=prepared,
            evidence=training.evidence or None,
            dataset=f"{self.config.dataset}:{self.config.train_split}+feedback",
            progress=_progress if self.config.progress else _no_progress,
        )
        self._fitted[key] = coder
        return coder


def _progress(items: Sequence[Any], desc: str) -> Sequence[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False)  # type: ignore[return-value]


def _no_progress(items: Sequence[Any], desc: str) -> Sequence[Any]:
    return items


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
    from medcode.data.corpora import load_corpus
    from medcode.data.errors import InvalidInputError

    train = [e for e in load_corpus(config.dataset, config.data_dir, config.train_split) if e.gold]
    evaluation = [e for e in load_corpus(config.dataset, config.data_dir, config.eval_split) if e.gold]
    if config.limit:
        train = train[: config.limit]
    if config.eval_limit:
        evaluation = evaluation[: config.eval_limit]
    if config.diagnosis_only:
        train, evaluation = _diagnoses_only(train), _diagnoses_only(evaluation)
    if len(train) < 8 or not evaluation:
        raise InvalidInputError(
            f"{config.dataset}: the simulation needs at least 8 coded training encounters and a coded "
            f"{config.eval_split} split"
        )
    return train, evaluation


def _diagnoses_only(encounters: Sequence[Encounter]) -> list[Encounter]:
    from medcode.data.types import Gold

    return [
        e.model_copy(update={"gold": Gold(diagnosis=list(e.gold.diagnosis))})
        for e in encounters
        if e.gold is not None and e.gold.diagnosis
    ]


def corpus_hints(config: SimulationConfig) -> Hints:
    """CodiEsp-X evidence located in the English notes (the simulated coder's evidence for added codes)."""
    if config.dataset != "codiesp":
        return {}
    try:
        from medcode.training.codiesp_evidence import codiesp_sentence_evidence

        return codiesp_sentence_evidence(Path(config.data_dir), config.train_split)
    except Exception as exc:  # evidence hints are optional: the coder falls back to other evidence
        log.warning("no CodiEsp-X evidence for the simulated coder: %s", exc)
        return {}


def build_resources(config: SimulationConfig, initial: Sequence[Encounter]) -> tuple[Any, Any]:
    from medcode.model.catalog import knowledge_from
    from medcode.model.mentions import default_extractor
    from medcode.model.trained.coder import CodeResources, DefaultConfig
    from medcode.training.pipeline import TrainRequest, knowledge_root

    model_config = DefaultConfig(
        use_dense=config.dense, folds=config.folds, ranker_max_iter=config.ranker_max_iter
    )
    root = knowledge_root(
        TrainRequest(dataset=config.dataset, data_dir=config.data_dir, knowledge_dir=config.knowledge_dir)
    )
    knowledge = knowledge_from(root)
    resources = CodeResources(
        knowledge,
        model_config,
        extra_pcs_codes=sorted({c for e in initial if e.gold for c in e.gold.procedure}),
        training_codes=sorted({c for e in initial if e.gold for c in e.gold.diagnosis}),
    )
    return PreparedCache(resources, default_extractor()), model_config


def simulate(config: SimulationConfig) -> dict[str, Any]:
    """Run every arm of `config` and return the JSON of `medcode simulate-feedback`."""
    from threadpoolctl import threadpool_limits

    if config.threads is None:
        return _simulate(config)
    with threadpool_limits(limits=config.threads):
        return _simulate(config)


def _simulate(config: SimulationConfig) -> dict[str, Any]:
    started = time.perf_counter()
    train, evaluation = load_data(config)
    initial, batches = split_train(train, config.initial_fraction, config.rounds, config.seed)
    frozen = FrozenEvaluation.of(
        evaluation, dataset=config.dataset, split=config.eval_split, data_dir=Path(config.data_dir)
    )
    log.info(
        "simulation: %d starting encounters, %d arriving in %d rounds, %d evaluation encounters",
        len(initial),
        sum(len(b) for b in batches),
        len(batches),
        len(frozen.encounters),
    )
    cache, model_config = build_resources(config, initial)
    cache.warm(frozen.encounters, "reading evaluation notes", config.progress)
    cache.warm(train, "reading training notes", config.progress)
    fit = MemoFit(config, cache, model_config)
    predict = Predictions(cache, config.progress)
    hints = corpus_hints(config)
    human_gold = gold_of(train)
    runs: dict[Arm, ArmRun] = {}
    for arm in config.arms:
        runs[arm] = run_arm(
            arm, config, initial, batches, frozen, fit, predict, SimulatedCoder(human_gold, hints)
        )
    arms = {arm.label: run.summary for arm, run in runs.items()}
    primary = arms[config.arms[0].label]
    out: dict[str, Any] = {
        "dataset": config.dataset,
        "eval_split": config.eval_split,
        "strategy": config.arms[0].strategy,
        "review_fraction": config.arms[0].review_fraction,
        "rounds": primary["rounds"],
        "promoted": primary["promoted"],
        "improvement": primary["improvement"],
        "strategies": arms,
        "comparisons": compare_arms(runs, frozen, config),
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
            "model_config": model_config.to_json(),
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
    human: SimulatedCoder,
) -> ArmRun:
    """Round 0 and the feedback rounds of one simulated service."""
    from medcode.settings import get_settings

    strategy = arm.strategy
    priority = priority_of(strategy)
    tag = f"{strategy}-{round(arm.review_fraction * 100)}"
    retrain_config = RetrainConfig(
        metric=config.metric,
        tolerance=config.tolerance,
        registered_name=f"{get_settings().registered_model_name}-simulation-{tag}",
        mlflow=config.mlflow,
        use_evidence=config.use_evidence,
        n_resamples=config.n_resamples,
        seed=config.seed,
        params={"strategy": strategy, "review_fraction": arm.review_fraction},
    )
    t0 = time.perf_counter()
    retrain_config.run_name = f"simulation-{tag}-round-0"
    first = retrain(initial, [], frozen, fit, retrain_config, champion=None, predict=predict)
    champion = Champion(predict.served(first.coder), first.candidate, first.registered_version)
    round0 = first.candidate
    rows = [_row(0, first, champion, round0, None, time.perf_counter() - t0)]
    promoted = [0]
    _checkpoint(config, arm, rows)
    with tempfile.TemporaryDirectory(prefix="medcode-simulation-") as tmp:
        desk = ReviewDesk(f"sqlite:///{Path(tmp) / f'review-{tag}.db'}")
        try:
            for number, batch in enumerate(batches, start=1):
                t0 = time.perf_counter()
                auto_before = desk.auto_accepted
                for encounter in _bar(batch, f"round {number}: submit", config.progress):
                    desk.submit(encounter, champion.coder, priority, force_review=config.force_review)
                budget = round(len(batch) * arm.review_fraction)
                reviewed = desk.review(budget, human, progress=config.progress)
                feedback = desk.export(exclude_encounter_ids=frozen.guard.ids)
                retrain_config.run_name = f"simulation-{tag}-round-{number}"
                outcome = retrain(
                    initial, feedback, frozen, fit, retrain_config, champion=champion, predict=predict
                )
                if outcome.promote:
                    champion = Champion(
                        predict.served(outcome.coder), outcome.candidate, outcome.registered_version
                    )
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
        finally:
            desk.close()
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
        "review": human.stats.to_json(),
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
