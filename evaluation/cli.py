"""`medcode evaluate`, `medcode compare` and `medcode benchmark`.

Heavy modules (numpy, matplotlib, mlflow, the models) are imported inside the handlers: this module is
imported whenever `medcode` starts.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from medcode.settings import add_model_argument

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    _register_evaluate(subparsers)
    _register_compare(subparsers)
    _register_benchmark(subparsers)


def _corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="corpus reader: codiesp or jsonl")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="corpus folder (codiesp: the codiesp folder; jsonl: folder with SPLIT.jsonl, or a .jsonl file); "
        "default $MEDCODE_DATA_DIR/DATASET",
    )
    parser.add_argument(
        "--split",
        default="dev",
        help="split to evaluate (default: dev); never the one the model was tuned on",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N encounters")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: the last line of stdout is one JSON object",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _register_evaluate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on a corpus split (metrics, plots, MLflow)",
        description="Run a model over a corpus split and report MAP, micro/macro P/R/F1, P@k/R@k, AUC, "
        "calibration, automation, safety and coding-rule checks; writes report.json, summary.md and PNG "
        "plots to --out and logs the run to MLflow.",
    )
    _corpus_arguments(parser)
    add_model_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report folder (default: a new artifacts/eval-<timestamp> folder)",
    )
    parser.add_argument(
        "--train-split", default="train", help="split giving code frequencies (default: train)"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    parser.add_argument(
        "--no-safety", action="store_true", help="skip re-extracting mentions for the safety check"
    )
    parser.set_defaults(func=cmd_evaluate)


def _register_compare(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare two models on the same documents (paired bootstrap)",
        description="Run two models over the same corpus split and report, per metric, A, B, B - A and the "
        "paired-bootstrap confidence interval of the difference (documents resampled).",
    )
    parser.add_argument("ref_a", metavar="REF_A", help="first model reference (the baseline)")
    parser.add_argument("ref_b", metavar="REF_B", help="second model reference (the candidate)")
    _corpus_arguments(parser)
    parser.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default: 0.95)")
    parser.add_argument("--out", type=Path, default=None, help="also write compare.json to this folder")
    parser.set_defaults(func=cmd_compare)


def _register_benchmark(subparsers: Any) -> None:
    from medcode.evaluation.benchmark import add_arguments

    parser = subparsers.add_parser(
        "benchmark",
        help="latency, throughput and memory of a model; appends to benchmarks/NOTES.md",
        description="Time a model's suggest() per note (p50/p95/p99), throughput and peak memory, and "
        "append a dated section with the machine description to the benchmark notes.",
    )
    add_arguments(parser)
    parser.set_defaults(func=cmd_benchmark)


def default_out_dir() -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("artifacts") / f"eval-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("artifacts") / f"eval-{stamp}-{n}"
    return out


def cmd_evaluate(args: argparse.Namespace) -> int:
    from medcode.evaluation.evaluate import evaluate_coder, write_and_log
    from medcode.evaluation.report import summary_table
    from medcode.evaluation.runner import (
        load_coder,
        load_encounters,
        load_training_frequencies,
        resolve_data_dir,
    )
    from medcode.settings import get_settings

    data_dir = resolve_data_dir(args.dataset, args.data_dir)
    encounters = load_encounters(args.dataset, data_dir, args.split, args.limit)
    frequencies, train = load_training_frequencies(args.dataset, data_dir, args.split, args.train_split)
    ref = args.model or get_settings().model_ref
    coder = load_coder(ref)
    report, curves = evaluate_coder(
        coder,
        encounters,
        dataset=args.dataset,
        split=args.split,
        model_ref=ref,
        train=train,
        frequencies=frequencies,
        safety=not args.no_safety,
        progress=not args.no_progress,
        data_dir=data_dir,
    )
    out_dir = args.out or default_out_dir()
    files, run_id = write_and_log(report, curves, out_dir, mlflow=not args.no_mlflow)
    if run_id is not None:
        report["mlflow_run_id"] = run_id
    report["out_dir"] = str(out_dir)
    if args.format == "json":
        print(json.dumps(report))
    else:
        print(
            f"{args.dataset}/{args.split}: {report['n_documents']} documents, model {ref} ({coder.version})"
        )
        print(summary_table(report))
        print(f"report: {out_dir} ({len(files)} files)" + (f"; MLflow run {run_id}" if run_id else ""))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from medcode.evaluation.compare import compare_results, comparison_table
    from medcode.evaluation.runner import (
        load_coder,
        load_encounters,
        resolve_data_dir,
        run_coder,
        valid_code_filters,
    )

    data_dir = resolve_data_dir(args.dataset, args.data_dir)
    encounters = load_encounters(args.dataset, data_dir, args.split, args.limit)
    coder_a = load_coder(args.ref_a)
    run_a = run_coder(coder_a, encounters, desc=f"suggest ({args.ref_a})", progress=not args.no_progress)
    coder_b = load_coder(args.ref_b)
    run_b = run_coder(coder_b, encounters, desc=f"suggest ({args.ref_b})", progress=not args.no_progress)
    comparison = compare_results(
        encounters,
        run_a.results,
        run_b.results,
        valid=valid_code_filters(encounters, data_dir),
        n_resamples=args.n_resamples,
        seed=args.seed,
        confidence=args.confidence,
    )
    from medcode.evaluation.report import clean_json

    out: dict[str, Any] = clean_json(
        {
            "dataset": args.dataset,
            "split": args.split,
            "model_a": args.ref_a,
            "model_b": args.ref_b,
            "model_a_version": str(coder_a.version),
            "model_b_version": str(coder_b.version),
            "n_documents": len(encounters),
            "n_resamples": args.n_resamples,
            "seed": args.seed,
            "confidence": args.confidence,
            "tasks": comparison,
        }
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare.json").write_text(json.dumps(out, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(out))
    else:
        print(
            f"A = {args.ref_a} ({coder_a.version}), B = {args.ref_b} ({coder_b.version}); "
            f"{len(encounters)} documents of {args.dataset}/{args.split}"
        )
        print(comparison_table(comparison, args.confidence))
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from medcode.evaluation.benchmark import handle

    return handle(args)
