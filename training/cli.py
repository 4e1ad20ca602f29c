"""`medcode train`: fit a preset, evaluate it on the validation split, log everything to MLflow, register
a version, and move the champion alias when the new model is not worse."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.data.errors import DatasetNotFoundError, InvalidInputError

if TYPE_CHECKING:
    from medcode.training.pipeline import TrainRequest

log = logging.getLogger(__name__)

PRESETS = ("builtin", "default", "transformer")


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
    parser.add_argument("--dataset", required=True, help="codiesp or jsonl")
    parser.add_argument("--data-dir", required=True, type=Path, help="the dataset folder")
    parser.add_argument(
        "--preset", choices=PRESETS, default="default", help="model preset (default: default)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the transformer preset)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training encounters")
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        help="share of train held out for calibration and thresholds (0: K-fold out-of-fold, the default)",
    )
    parser.add_argument("--train-split", default="train")
    parser.add_argument(
        "--validation-split", default="dev", help="split evaluated and compared (default: dev)"
    )
    parser.add_argument("--folds", type=int, default=None, help="K for out-of-fold training (default 5)")
    parser.add_argument("--no-dense", action="store_true", help="default preset without the sentence encoder")
    parser.add_argument(
        "--knowledge-dir",
        type=Path,
        default=None,
        help="datasets folder with the ICD-10-CM index, Disease Ontology and ICD-10-PCS "
        "(default: the data folder's parent, else MEDCODE_DATA_DIR)",
    )
    parser.add_argument("--metric", default="diagnosis.map", help="validation metric of the promotion gate")
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="how much worse than the champion still promotes"
    )
    parser.add_argument("--out", type=Path, default=None, help="also keep the model pack in this folder")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log, register or promote")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run_train)


def train_request(args: argparse.Namespace) -> TrainRequest:
    """The TrainRequest of `train` and `retrain` from their common options (holdout and --out where given)."""
    from medcode.training.pipeline import TrainRequest

    return TrainRequest(
        dataset=args.dataset,
        data_dir=args.data_dir,
        preset=args.preset,
        device=args.device,
        limit=args.limit,
        holdout=getattr(args, "holdout", 0.0),
        train_split=args.train_split,
        validation_split=args.validation_split,
        folds=args.folds,
        dense=not args.no_dense,
        knowledge_dir=args.knowledge_dir,
        metric=args.metric,
        tolerance=args.tolerance,
        out=getattr(args, "out", None),
        mlflow=not args.no_mlflow,
    )


def run_train(args: argparse.Namespace) -> int:
    from medcode.training.pipeline import train_and_register

    if args.holdout < 0 or args.holdout >= 0.9:
        raise InvalidInputError("--holdout must be in [0, 0.9)")
    if args.limit is not None and args.limit < 4:
        raise InvalidInputError("--limit must be at least 4")
    if not args.data_dir.exists():
        raise DatasetNotFoundError(f"data folder not found: {args.data_dir}")
    request = train_request(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medcode-train-") as tmp:
        outcome = train_and_register(request, Path(tmp))
    outcome["seconds"] = round(time.perf_counter() - started, 1)
    _print(outcome, args.format)
    return 0


def _print(outcome: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(outcome, sort_keys=True, default=str))
        return
    print(f"model {outcome['version']} ({outcome['preset']}) trained in {outcome['seconds']} s")
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
    if outcome.get("pack"):
        print(f"model pack: {outcome['pack']}")
