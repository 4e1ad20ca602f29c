"""The evaluation report: every task's figures, the output checks, and the files written to --out.

`build_report` assembles the JSON contract (DESIGN.md) from encounters and a model's results;
`write_report` writes report.json, summary.md and the PNG plots.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcode.data.types import Encounter, Result, Task
from medcode.evaluation import checks
from medcode.evaluation.breakdown import FREQUENT_MIN
from medcode.evaluation.scoring import TASKS, CodeFilter, build_task_view, normalize_code, score_task

MACRO_DEFINITION = (
    "macro P/R/F1: unweighted mean over the codes present in the gold or in the predictions of the "
    "evaluated documents; per code, precision is 0 when never predicted, recall 0 when never gold; "
    "macro F1 is the mean of the per-code F1 values"
)
DEFINITIONS = {
    "map": "CodiEsp MAP: per document, trec_eval average precision of the ranked codes (suggested codes "
    "and candidates by confidence) against the gold codes, codes outside the valid code set ignored in both; "
    "mean over documents with gold codes",
    "micro": "micro P/R/F1 at the model's own thresholds (its suggested codes are the positives), pooled "
    "over all documents",
    "macro": MACRO_DEFINITION,
    "p_at_k": "P@k = gold codes in the top k / k; R@k = gold codes in the top k / gold codes; mean over "
    "documents with gold codes",
    "auc": "micro AUC over the document x code matrix of all codes in the gold or any ranking (unranked "
    "codes score below every ranked one); macro AUC: mean over codes with both gold and non-gold documents",
    "ece": "expected calibration error, 15 equal-width bins, over all ranked (encounter, code) pairs with "
    "label = code in gold",
    "automation_at_95": "share of gold codes auto-accepted (recall) at the lowest confidence cut-off where "
    "the auto-accepted suggested codes keep precision >= 0.95 (0.0 if none); encounters_auto_accepted: "
    "share of encounters whose suggested codes all reach that cut-off",
    "candidate_recall_at_50": "gold codes (pooled) among the top 50 ranked codes of their document",
    "by_frequency": f"gold-document frequency in the train split: frequent >= {FREQUENT_MIN}, few_shot "
    f"1-{FREQUENT_MIN - 1}, unseen 0",
    "safety": "suggested codes whose evidence spans overlap only negated, family or hypothetical mentions "
    "of the text pipeline (should be 0); codes without evidence counted apart",
    "rules": "in the suggested codes: non-billable ICD-10-CM headers, Excludes1 pairs both present (notes of "
    "the code, its ancestors, block and chapter), codes missing a required 7th character, codes not in "
    "ICD-10-CM; and the coding rules that fired, by rule (the codes' warnings); procedure codes get the "
    "firings only",
    "thresholds": "read from the model: the evaluation fits no threshold and no calibration",
}


def evaluate_results(
    encounters: Sequence[Encounter],
    results: Sequence[Result],
    *,
    frequencies: Mapping[Task, Mapping[str, int]] | None = None,
    valid: Mapping[Task, CodeFilter | None] | None = None,
    extractor: checks.Extractor | None = None,
    terminology: checks.TerminologyLike | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per task: the figures of the JSON contract and the curves behind the plots."""
    tasks: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    extractor = checks.cached(extractor) if extractor is not None else None
    for task in TASKS:
        view = build_task_view(task, encounters, results, (valid or {}).get(task))
        row, task_curves = score_task(view, frequencies.get(task) if frequencies is not None else None)
        row["safety"] = checks.safety_check(task, encounters, results, extractor)
        row["rules"] = checks.rules_check(task, results, terminology)
        tasks[task] = row
        curves[task] = task_curves
    return tasks, curves


def routing_figures(encounters: Sequence[Encounter], results: Sequence[Result]) -> dict[str, Any]:
    """The model's own routing: share auto-accepted, and how often those encounters were exactly right."""
    summary = checks.routing_summary(results)
    right = 0
    for encounter, result in zip(encounters, results, strict=True):
        if result.routing.decision != "auto_accept" or encounter.gold is None:
            continue
        gold = {(t, normalize_code(t, c)) for t in TASKS for c in encounter.gold.codes(t)}
        got = {(c.task, normalize_code(c.task, c.code)) for c in result.codes}
        right += int(gold == got)
    n_auto = summary["n_auto_accepted"]
    summary["auto_accepted_exact_match"] = right / n_auto if n_auto else None
    return summary


def build_report(
    *,
    dataset: str,
    split: str,
    model_ref: str,
    model_version: str,
    code_set_version: str,
    encounters: Sequence[Encounter],
    results: Sequence[Result],
    timing: Mapping[str, float] | None = None,
    frequencies: Mapping[Task, Mapping[str, int]] | None = None,
    valid: Mapping[Task, CodeFilter | None] | None = None,
    extractor: checks.Extractor | None = None,
    terminology: checks.TerminologyLike | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report (the JSON contract plus context) and the curves for the plots."""
    tasks, curves = evaluate_results(
        encounters,
        results,
        frequencies=frequencies,
        valid=valid,
        extractor=extractor,
        terminology=terminology,
    )
    report: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "model": model_ref,
        "model_version": model_version,
        "code_set_version": code_set_version,
        "calibrated": all(r.calibrated for r in results) if results else False,
        "n_documents": len(encounters),
        "frequency_source": "train split" if frequencies is not None else None,
        "tasks": tasks,
        "routing": routing_figures(encounters, results),
        "timing": dict(timing or {}),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return clean_json(report), clean_json(curves)


def clean_json(value: Any) -> Any:
    """nan and infinities become null (JSON has no NaN); tuples become lists; numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(report: Mapping[str, Any], curves: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """report.json (with the curves), summary.md and the PNG plots; returns the files written."""
    from medcode.evaluation.plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / "report.json"
    report_path.write_text(json.dumps({**report, "curves": curves}, indent=2, sort_keys=False) + "\n")
    plots = write_plots(report, curves, out_dir)
    summary_path = out_dir / "summary.md"
    summary_path.write_text(render_summary(report, [p.name for p in plots]))
    return [report_path, summary_path, *plots]


HEADLINE = (
    "map",
    "micro_f1",
    "micro_precision",
    "micro_recall",
    "macro_f1",
    "macro_precision",
    "macro_recall",
    "p_at_5",
    "p_at_8",
    "p_at_15",
    "r_at_5",
    "r_at_8",
    "r_at_15",
    "micro_auc",
    "macro_auc",
    "exact_match",
    "ece",
    "automation_at_95",
    "encounters_auto_accepted",
    "candidate_recall_at_50",
    "unseen_recall",
)


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_summary(report: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """A Markdown summary of the report for people."""
    tasks: Mapping[str, Any] = report["tasks"]
    names = list(tasks)
    lines = [
        f"# Evaluation of `{report['model']}` on {report['dataset']} / {report['split']}",
        "",
        f"- model version: `{report.get('model_version')}`; code set: {report.get('code_set_version')}; "
        f"calibrated: {report.get('calibrated')}",
        f"- documents: {report['n_documents']}; created: {report.get('created_at')}",
        f"- code frequencies from: {report.get('frequency_source') or 'not available'}",
        f"- model training data (from the model): {report.get('model_training_data') or 'not stated'}",
        *[f"\n> **Warning:** {w}" for w in report.get("warnings") or []],
        "",
        "## Headline figures",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key in HEADLINE:
        lines.append(f"| {key} | " + " | ".join(fmt(tasks[t].get(key)) for t in names) + " |")
    lines += ["", "## Counts", "", "| count | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in tasks[names[0]]["counts"]:
        lines.append(f"| {key} | " + " | ".join(fmt(tasks[t]["counts"].get(key)) for t in names) + " |")
    for task in names:
        lines += _breakdown_section(task, tasks[task])
    lines += _checks_section(tasks)
    routing = report.get("routing") or {}
    lines += [
        "",
        "## Routing (the model's own decision)",
        "",
        f"- auto-accepted encounters: {fmt(routing.get('auto_accepted'))} "
        f"(exactly right among them: {fmt(routing.get('auto_accepted_exact_match'))})",
        f"- review reasons: {routing.get('reasons') or {}}",
    ]
    timing = report.get("timing") or {}
    if timing:
        lines += ["", "## Timing", ""] + [f"- {k}: {fmt(v)}" for k, v in timing.items()]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "## Definitions", ""] + [f"- **{k}**: {v}" for k, v in DEFINITIONS.items()]
    return "\n".join(lines) + "\n"


def _breakdown_section(task: str, row: Mapping[str, Any]) -> list[str]:
    lines = ["", f"## {task}: by code frequency in training", ""]
    freq = row.get("by_frequency")
    cols = ("n_codes", "n_gold", "n_predicted", "precision", "recall", "f1", "candidate_recall_at_50")
    if freq:
        lines += ["| bucket | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for bucket, values in freq.items():
            lines.append(f"| {bucket} | " + " | ".join(fmt(values.get(c)) for c in cols) + " |")
    else:
        lines.append("No training split: frequencies not available.")
    label = "ICD-10-CM chapter" if task == "diagnosis" else "ICD-10-PCS section"
    lines += ["", f"## {task}: by {label}", ""]
    chapters = row.get("by_chapter") or {}
    if chapters:
        lines += ["| group | title | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
        for group, values in chapters.items():
            lines.append(
                f"| {group} | {values.get('title')} | " + " | ".join(fmt(values.get(c)) for c in cols) + " |"
            )
    else:
        lines.append("No codes.")
    return lines


def _checks_section(tasks: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Safety and coding rules (final output)", ""]
    for task, row in tasks.items():
        safety, rules = row["safety"], row["rules"]
        lines.append(
            f"- {task}: {fmt(safety.get('negated_family_hypothetical_only'))} suggested codes rest only on "
            f"negated/family/hypothetical mentions (by kind: {safety.get('by_assertion')}); "
            f"{fmt(safety.get('no_evidence'))} without evidence; "
            f"{fmt(safety.get('evidence_without_mention'))} with evidence but no mention there "
            f"(pipeline check: {safety.get('checked')})"
        )
        if task == "diagnosis":
            lines.append(
                f"- {task}: non-billable codes {fmt(rules.get('non_billable'))}, Excludes1 pairs "
                f"{fmt(rules.get('excludes1_pairs'))}, missing 7th character "
                f"{fmt(rules.get('missing_seventh_character'))}, not in the code set "
                f"{fmt(rules.get('not_in_code_set'))} (checked: {rules.get('checked')})"
            )
        lines.append(f"- {task}: rule firings by rule: {rules.get('rule_firings') or {}}")
    return lines


def summary_table(report: Mapping[str, Any], keys: Sequence[str] = HEADLINE) -> str:
    """A plain-text table of the headline figures, for the terminal."""
    tasks: Mapping[str, Any] = report["tasks"]
    names = list(tasks)
    width = max(len(k) for k in keys) + 2
    lines = ["".ljust(width) + "".join(n.rjust(12) for n in names)]
    for key in keys:
        lines.append(key.ljust(width) + "".join(fmt(tasks[t].get(key)).rjust(12) for t in names))
    return "\n".join(lines)
