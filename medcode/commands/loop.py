"""Learning-loop commands: `medcode retrain` (base corpus + coder feedback, behind the promotion gate) and
`medcode simulate-feedback` (the whole loop with a simulated coder).

They compose training with the service (its database's feedback export, its review path), which may not
import each other; settings are read here and passed down.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from medcode.data.errors import InvalidInputError
from medcode.model import presets
from medcode.training.cli import fit_environment
from medcode.training.options import TrainingOptions, add_training_options

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _register_retrain(subparsers)
    _register_simulate(subparsers)


# -- retrain -------------------------------------------------------------------------------------------------


def _register_retrain(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "retrain",
        help="retrain with coder feedback and promote only when the model does not regress",
        description=(
            "Merge the base training corpus with the finalized reviews of the service database (latest "
            "decision wins; rejected codes as negatives; evaluation encounters never trained on), fit, "
            "evaluate the new model and the champion on the frozen validation split, and move the "
            "champion alias only when the new model is not worse by more than --tolerance. Every step "
            "is an MLflow run tagged with the data fingerprints."
        ),
    )
    add_training_options(parser, preset_names=presets.names(learning_only=True))
    parser.add_argument("--db", default=None, help="service database URL (default: MEDCODE_DATABASE_URL)")
    parser.add_argument("--since", default=None, help="only feedback finalized at or after this ISO time")
    parser.add_argument("--no-evidence", action="store_true", help="do not train on the feedback's evidence")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run_retrain)


def run_retrain(args: argparse.Namespace) -> int:
    from medcode.evaluation.tracking import Tracker
    from medcode.serving.db import Database
    from medcode.serving.feedback import export_feedback
    from medcode.settings import get_settings
    from medcode.training.pipeline import load_splits
    from medcode.training.retrain import FrozenEvaluation, RetrainConfig, preset_fit, retrain
    from medcode.training.tracking import LOOP_EXPERIMENT

    options = TrainingOptions.from_args(args)
    settings = get_settings()
    since = _parse_time(args.since)
    base, validation = load_splits(options)
    if not validation:
        raise InvalidInputError(
            f"no coded encounters in {options.dataset} {options.validation_split}: nothing to gate on"
        )
    frozen = FrozenEvaluation.of(
        validation, dataset=options.dataset, split=options.validation_split, data_dir=options.data_dir
    )
    database = Database.connect(args.db or settings.resolved_database_url)
    try:
        with database.sessions() as session:
            feedback = export_feedback(session, since=since, exclude_encounter_ids=frozen.guard.ids)
            session.rollback()
    finally:
        database.dispose()
    log.info("%d finalized reviews exported", len(feedback))
    config = RetrainConfig(
        metric=options.metric,
        tolerance=options.tolerance,
        use_evidence=not args.no_evidence,
        params={"preset": options.preset, "dataset": options.dataset, "feedback_examples": len(feedback)},
    )
    outcome = retrain(
        base,
        feedback,
        frozen,
        preset_fit(options, environment=fit_environment(settings)),
        config,
        champion=settings.registry,
        tracker=Tracker.from_settings(LOOP_EXPERIMENT, settings) if options.mlflow else None,
    )
    out = {"feedback_examples": len(feedback), **outcome.to_json()}
    if args.format == "json":
        print(json.dumps(out, sort_keys=True, default=str))
        return 0
    cand = outcome.candidate.summary()
    print(
        f"trained {cand['version']} on {outcome.training.summary()['encounters']} encounters "
        f"({len(outcome.training.feedback_ids)} with coder feedback)"
    )
    print(f"  {frozen.split} MAP {cand['map']:.4f} [{cand['map_ci'][0]:.4f}, {cand['map_ci'][1]:.4f}]")
    if outcome.champion is not None:
        champ = outcome.champion.summary()
        print(f"  champion {champ['version']}: MAP {champ['map']:.4f}")
    if not options.mlflow:
        verdict = (
            "gate (not applied: --no-mlflow) would promote: " if outcome.promote else "gate would refuse: "
        )
    else:
        verdict = "promoted to champion: " if outcome.promote else "not promoted: "
    print(verdict + outcome.reason)
    return 0


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"--since must be an ISO date or time, got {value!r}") from None


# -- simulate-feedback ---------------------------------------------------------------------------------------


def _register_simulate(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "simulate-feedback",
        help="run the learning loop with a simulated coder and measure it by round",
        description=(
            "Train a model on part of the train split, send the rest through the review service in "
            "rounds with a simulated coder who decides by the gold codes, retrain after each round "
            "behind the promotion gate, and evaluate every round on the frozen dev split. Writes "
            "simulation.json and learning_loop.png to --out. Rounds use a reduced default-preset "
            "configuration (--folds, --ranker-iter) so that each takes minutes on a CPU."
        ),
    )
    # a reduced default-preset configuration: a round takes minutes on a CPU
    add_training_options(parser, preset_names=presets.names(learning_only=True), folds=3, ranker_iter=150)
    parser.add_argument("--rounds", type=int, required=True, help="feedback rounds (1 or more)")
    parser.add_argument(
        "--strategy",
        choices=("fifo", "uncertainty", "margin", "both"),
        default="uncertainty",
        help="review queue order; both: uncertainty, then FIFO on the same data (default uncertainty)",
    )
    parser.add_argument("--seed", type=int, default=13, help="shuffle of the train split (default 13)")
    parser.add_argument(
        "--initial-fraction", type=float, default=0.4, help="share of train for the starting model (0.4)"
    )
    parser.add_argument(
        "--review-fraction",
        type=float,
        default=1.0,
        help="share of each round's arrivals the coders review (1.0; below 1 the queue order matters)",
    )
    parser.add_argument(
        "--compare-at",
        type=float,
        default=None,
        metavar="F",
        help="also run uncertainty and FIFO queues reviewing this share of arrivals, on the same data",
    )
    parser.add_argument("--eval-limit", type=int, default=None, help="evaluate on the first N encounters")
    parser.add_argument(
        "--diagnosis-only", action="store_true", help="leave procedure codes out (faster rounds)"
    )
    parser.add_argument("--force-review", action="store_true", help="send every encounter to review")
    parser.add_argument("--no-evidence", action="store_true", help="do not train on feedback evidence spans")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (1000)")
    parser.add_argument("--out", type=Path, default=None, help="folder for simulation.json and the plot")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from medcode.evaluation.tracking import Tracker
    from medcode.review_desk import sqlite_desks
    from medcode.settings import get_settings
    from medcode.training.simulate import Arm, SimulationConfig, simulate
    from medcode.training.tracking import LOOP_EXPERIMENT

    options = TrainingOptions.from_args(args)
    if args.rounds < 1:
        raise InvalidInputError("--rounds must be at least 1")
    if not 0 < args.review_fraction <= 1:
        raise InvalidInputError("--review-fraction must lie in (0, 1]")
    if args.compare_at is not None and not 0 < args.compare_at <= 1:
        raise InvalidInputError("--compare-at must lie in (0, 1]")
    settings = get_settings()
    names = ("uncertainty", "fifo") if args.strategy == "both" else (args.strategy,)
    arms = [Arm(name, args.review_fraction) for name in names]
    if args.compare_at is not None:
        arms += [Arm(name, args.compare_at) for name in ("uncertainty", "fifo")]
    arms = list(dict.fromkeys(arms))
    out = args.out or settings.home / "simulations" / datetime.now().strftime("%Y%m%dT%H%M%S")
    config = SimulationConfig(
        training=options,
        rounds=args.rounds,
        initial_fraction=args.initial_fraction,
        arms=tuple(arms),
        seed=args.seed,
        eval_limit=args.eval_limit,
        force_review=args.force_review,
        diagnosis_only=args.diagnosis_only,
        use_evidence=not args.no_evidence,
        out=out,
        n_resamples=args.resamples,
        environment=fit_environment(settings),
    )
    tracker = Tracker.from_settings(LOOP_EXPERIMENT, settings) if options.mlflow else None
    with tempfile.TemporaryDirectory(prefix="medcode-simulation-") as tmp:
        summary = simulate(config, sqlite_desks(Path(tmp)), tracker)
    if args.format == "json":
        print(json.dumps(summary, sort_keys=True, default=str))
        return 0
    print_simulation(summary)
    return 0


def print_simulation(summary: dict[str, Any]) -> None:
    """The text form of `simulate-feedback`: MAP by round per arm, the improvement, the arm comparison."""
    for name, data in summary["strategies"].items():
        print(f"strategy {name}")
        for row in data["rounds"]:
            mark = "promoted" if row["promoted"] else "kept champion"
            print(
                f"  round {row['round']}: MAP {row['map']:.4f} [{row['map_ci'][0]:.4f}, {row['map_ci'][1]:.4f}]"
                f" trained on {row['train_encounters']} ({row['feedback_encounters']} from feedback); {mark}"
            )
        imp = data["improvement"]
        print(
            f"  champion MAP {imp['before']:.4f} -> {imp['after']:.4f} (delta {imp['delta']:+.4f}, "
            f"95% CI [{imp['delta_ci'][0]:+.4f}, {imp['delta_ci'][1]:+.4f}])"
        )
    for comp in summary.get("comparisons", []):
        print(
            f"{comp['active']} - {comp['fifo']}: final champion MAP {comp['delta']:+.4f} "
            f"(95% paired CI [{comp['delta_ci'][0]:+.4f}, {comp['delta_ci'][1]:+.4f}])"
        )
    print(f"plot: {summary.get('plot')}")
