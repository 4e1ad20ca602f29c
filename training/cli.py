"""`medcode train`: fit a preset, evaluate it on the validation split, log everything to MLflow, register
a version, and move the champion alias when the new model is not worse."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from medcode.data.errors import InvalidInputError
from medcode.settings import Settings
from medcode.training.options import TrainingOptions, add_training_options
from medcode.training.presets import FitEnvironment

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "train",
        help="fit a model, evaluate it on the validation split, log and register it in MLflow",
        description=(
            "Fit a model preset on the train split, evaluate it on the validation split (dev for "
            "CodiEsp), log parameters, metrics, plots and the model pack to MLflow, register a version, "
            "and make it the champion when it is not worse than the current one."
        ),
    )
    add_training_options(parser)
    parser.add_argument("--out", type=Path, default=None, help="also keep the model pack in this folder")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--release",
        action="store_true",
        help="fit the release model on train+validation, calibration and thresholds chosen by K-fold "
        "cross-validation on train alone; registered with a release tag, never gated on validation",
    )
    parser.add_argument(
        "--promote",
        action="store_true",
        help="with --release: make the release model the champion (explicitly; it has seen validation)",
    )
    parser.set_defaults(func=run_train)


def fit_environment(settings: Settings) -> FitEnvironment:
    """What the settings supply to every fit: the datasets folder as code-knowledge fallback, the coding-rules
    config the model will carry, and the cache folder for lexicons and code vectors."""
    return FitEnvironment(
        knowledge_fallback=settings.data_dir, rules=settings.rules, cache_dir=settings.cache_dir
    )


def run_train(args: argparse.Namespace) -> int:
    from medcode.evaluation.tracking import Tracker
    from medcode.settings import get_settings
    from medcode.training.pipeline import train_and_register
    from medcode.training.tracking import TRAINING_EXPERIMENT

    options = TrainingOptions.from_args(args)
    if args.promote and not args.release:
        raise InvalidInputError("--promote applies to --release only (a normal fit is gated on validation)")
    if args.promote and not options.mlflow:
        raise InvalidInputError(
            "--promote moves the registry's champion alias: it cannot go with --no-mlflow"
        )
    settings = get_settings()
    tracker = Tracker.from_settings(TRAINING_EXPERIMENT, settings) if options.mlflow else None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medcode-train-") as tmp:
        if args.release:
            from medcode.training.release import release_and_register

            outcome = release_and_register(
                options,
                Path(tmp),
                tracker=tracker,
                out=args.out,
                environment=fit_environment(settings),
                promote=args.promote,
            )
        else:
            outcome = train_and_register(
                options, Path(tmp), tracker=tracker, out=args.out, environment=fit_environment(settings)
            )
    outcome["seconds"] = round(time.perf_counter() - started, 1)
    _print(outcome, args.format)
    return 0


def _print(outcome: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(outcome, sort_keys=True, default=str))
        return
    print(f"model {outcome['version']} ({outcome['preset']}) trained in {outcome['seconds']} s")
    if outcome.get("release"):
        print(
            f"  release model fitted on {outcome['fit_on']}; calibration and thresholds: {outcome['settings_from']}"
        )
        print("  not measured on the validation split nor compared with the champion: it has seen that split")
    for task, values in (outcome.get("metrics") or {}).get("tasks", {}).items():
        if isinstance(values, dict):
            shown = ", ".join(
                f"{k} {values[k]:.4f}"
                for k in ("map", "micro_f1", "ece")
                if isinstance(values.get(k), int | float)
            )
            print(f"  {outcome.get('validation_split')} {task}: {shown}")
    if outcome.get("registered_version"):
        print(f"registered {outcome['registered_name']} version {outcome['registered_version']}")
    promotion = outcome.get("promotion")
    if promotion:
        verdict = "promoted to champion" if promotion["promote"] else "not promoted"
        print(f"{verdict}: {promotion['reason']}")
        if outcome.get("release") and not promotion["promote"]:
            name, version = outcome["registered_name"], outcome["registered_version"]
            print(
                f"  serve it with --model models:/{name}/{version}, or make it the champion: give version "
                f"{version} the 'champion' alias in the MLflow registry (UI: Models > {name}), or fit it "
                "with `medcode train --release --promote`"
            )
    if outcome.get("pack"):
        print(f"model pack: {outcome['pack']}")
