"""Compare two models on the same documents: per-metric differences with paired-bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from medcode.data.types import Encounter, Result, Task
from medcode.evaluation import bootstrap, metrics
from medcode.evaluation.scoring import (
    K_VALUES,
    TASKS,
    CodeFilter,
    DocumentRows,
    TaskView,
    build_task_view,
    document_rows,
)

RowsOf = Callable[[DocumentRows], np.ndarray]


def _ap(rows: DocumentRows) -> np.ndarray:
    return rows.ap


def _counts(rows: DocumentRows) -> np.ndarray:
    return rows.counts


def _exact(rows: DocumentRows) -> np.ndarray:
    return rows.exact


def _candidates(rows: DocumentRows) -> np.ndarray:
    return rows.candidates


def _p_at(k: int) -> RowsOf:
    def rows_of(rows: DocumentRows) -> np.ndarray:
        return rows.p_at_k[k]

    return rows_of


def _r_at(k: int) -> RowsOf:
    def rows_of(rows: DocumentRows) -> np.ndarray:
        return rows.r_at_k[k]

    return rows_of


# metric -> (per-document rows, statistic over resampled rows)
BOOTSTRAPPED: dict[str, tuple[RowsOf, bootstrap.Statistic]] = {
    "map": (_ap, bootstrap.mean_statistic),
    "micro_f1": (_counts, bootstrap.micro_f1_statistic),
    "micro_precision": (_counts, bootstrap.micro_precision_statistic),
    "micro_recall": (_counts, bootstrap.micro_recall_statistic),
    **{f"p_at_{k}": (_p_at(k), bootstrap.mean_statistic) for k in K_VALUES},
    **{f"r_at_{k}": (_r_at(k), bootstrap.mean_statistic) for k in K_VALUES},
    "exact_match": (_exact, bootstrap.mean_statistic),
    "candidate_recall_at_50": (_candidates, bootstrap.ratio_statistic),
}


def compare_views(
    view_a: TaskView,
    view_b: TaskView,
    *,
    n_resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Per metric: A, B, B - A and the paired-bootstrap interval of the difference (same resamples for all)."""
    if view_a.encounter_ids != view_b.encounter_ids:
        raise ValueError("both models must be scored on the same encounters, in the same order")
    rows_a, rows_b = document_rows(view_a), document_rows(view_b)
    out: dict[str, Any] = {}
    for name, (rows_of, statistic) in BOOTSTRAPPED.items():
        diff = bootstrap.paired_bootstrap(
            rows_of(rows_a),
            rows_of(rows_b),
            statistic=statistic,
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        )
        out[name] = {k: v for k, v in diff.as_dict().items() if k not in ("confidence", "n_resamples")}
    macro_a = metrics.macro_prf(view_a.predicted_sets, view_a.golds).f1
    macro_b = metrics.macro_prf(view_b.predicted_sets, view_b.golds).f1
    out["macro_f1"] = {
        "a": macro_a,
        "b": macro_b,
        "delta": macro_b - macro_a,
        "low": None,
        "high": None,
        "p_value": None,
    }
    out["map_interval"] = {
        "a": bootstrap.bootstrap_ci(
            rows_a.ap, n_resamples=n_resamples, seed=seed, confidence=confidence
        ).as_dict(),
        "b": bootstrap.bootstrap_ci(
            rows_b.ap, n_resamples=n_resamples, seed=seed, confidence=confidence
        ).as_dict(),
    }
    return out


def compare_results(
    encounters: Sequence[Encounter],
    results_a: Sequence[Result],
    results_b: Sequence[Result],
    *,
    valid: Mapping[Task, CodeFilter | None] | None = None,
    n_resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Both tasks' comparisons."""
    return {
        task: compare_views(
            build_task_view(task, encounters, results_a, (valid or {}).get(task)),
            build_task_view(task, encounters, results_b, (valid or {}).get(task)),
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        )
        for task in TASKS
    }


def comparison_table(comparison: Mapping[str, Any], confidence: float = 0.95) -> str:
    """A plain-text table: metric, A, B, B - A, interval, p-value, per task."""
    lines = []
    pct = round(confidence * 100)
    for task, rows in comparison.items():
        lines.append(f"{task}")
        lines.append(f"  {'metric':<24}{'A':>9}{'B':>9}{'B-A':>9}   {pct}% CI of B-A       p")
        for name, row in rows.items():
            if name == "map_interval":
                continue
            ci = (
                f"[{row['low']:+.4f}, {row['high']:+.4f}]"
                if row.get("low") is not None
                else "(not bootstrapped)"
            )
            p = f"{row['p_value']:.3f}" if row.get("p_value") is not None else ""
            lines.append(f"  {name:<24}{row['a']:>9.4f}{row['b']:>9.4f}{row['delta']:>+9.4f}   {ci:<20} {p}")
    return "\n".join(lines)


def map_interval(
    encounters: Sequence[Encounter],
    results: Sequence[Result],
    task: Task = "diagnosis",
    *,
    valid: CodeFilter | None = None,
    n_resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> bootstrap.Interval:
    """One model's MAP on `task` with its bootstrap interval (documents resampled)."""
    rows = document_rows(build_task_view(task, encounters, results, valid))
    return bootstrap.bootstrap_ci(rows.ap, n_resamples=n_resamples, seed=seed, confidence=confidence)


def paired_map_difference(
    encounters: Sequence[Encounter],
    results_a: Sequence[Result],
    results_b: Sequence[Result],
    task: Task = "diagnosis",
    *,
    valid: CodeFilter | None = None,
    n_resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> bootstrap.PairedDifference:
    """MAP(B) - MAP(A) on the same documents with its paired-bootstrap interval (a promotion gate's input)."""
    rows_a = document_rows(build_task_view(task, encounters, results_a, valid))
    rows_b = document_rows(build_task_view(task, encounters, results_b, valid))
    return bootstrap.paired_bootstrap(
        rows_a.ap, rows_b.ap, n_resamples=n_resamples, seed=seed, confidence=confidence
    )
