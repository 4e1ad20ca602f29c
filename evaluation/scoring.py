"""From model results to per-task metrics: the views the metric functions score, and the scoring itself.

`build_task_view` reads encounters (gold) and results (suggested codes and ranked candidates) of one task;
`score_task` computes every figure of the evaluation JSON for it; `document_rows` gives the per-document
values the bootstrap resamples. Nothing here fits anything: thresholds and calibration are the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medcode.data.types import Encounter, Result, Task
from medcode.evaluation import breakdown, metrics
from medcode.model import calibration

TASKS: tuple[Task, ...] = ("diagnosis", "procedure")
K_VALUES = (5, 8, 15)
CANDIDATE_K = 50
AUTOMATION_TARGET = 0.95

CodeFilter = Callable[[str], bool]


def normalize_code(task: str, code: str) -> str:
    """Comparable form: upper case, no spaces; ICD-10-CM with its dot after the category ("e1122" ->
    "E11.22"); procedure codes without dots ("bw03.zzz" -> "BW03ZZZ")."""
    code = "".join(code.split()).upper()
    if task == "diagnosis":
        if "." not in code and len(code) > 3 and code[0].isalpha():
            code = f"{code[:3]}.{code[3:]}"
        return code
    return code.replace(".", "")


@dataclass
class TaskView:
    """One task's gold and predictions, one entry per encounter, codes normalized and filtered."""

    task: Task
    encounter_ids: list[str]
    golds: list[set[str]]
    suggested: list[list[tuple[str, float]]]
    """The model's suggested codes (its positives) with their confidence."""
    ranked: list[list[tuple[str, float]]]
    """Suggested codes and candidates, highest confidence first, each code once."""
    ignored_gold: int = 0
    ignored_predicted: int = 0
    encounter_has_gold: list[bool] = field(default_factory=list)

    @property
    def predicted_sets(self) -> list[set[str]]:
        return [{c for c, _ in s} for s in self.suggested]

    @property
    def rankings(self) -> list[list[str]]:
        return [[c for c, _ in r] for r in self.ranked]


def build_task_view(
    task: Task,
    encounters: Sequence[Encounter],
    results: Sequence[Result],
    valid: CodeFilter | None = None,
) -> TaskView:
    """Collect gold, suggested and ranked codes of `task`; codes outside `valid` are dropped everywhere."""
    if len(encounters) != len(results):
        raise ValueError("one result per encounter is needed")
    view = TaskView(task, [], [], [], [])
    for encounter, result in zip(encounters, results, strict=True):
        raw_gold = encounter.gold.codes(task) if encounter.gold else []
        gold = {normalize_code(task, c) for c in raw_gold}
        kept_gold = {c for c in gold if valid is None or valid(c)}
        view.ignored_gold += len(gold) - len(kept_gold)
        suggested = _scored([c for c in result.codes if c.task == task], task)
        ranked = _scored(result.ranked(task), task)
        kept_suggested = [(c, s) for c, s in suggested if valid is None or valid(c)]
        view.ignored_predicted += len(suggested) - len(kept_suggested)
        view.encounter_ids.append(encounter.encounter_id)
        view.golds.append(kept_gold)
        view.suggested.append(kept_suggested)
        view.ranked.append([(c, s) for c, s in ranked if valid is None or valid(c)])
        view.encounter_has_gold.append(bool(raw_gold))
    return view


def _scored(suggestions: Sequence[Any], task: str) -> list[tuple[str, float]]:
    out: dict[str, float] = {}
    for s in suggestions:
        out.setdefault(normalize_code(task, s.code), float(s.confidence))
    return list(out.items())


def score_task(
    view: TaskView,
    frequencies: Mapping[str, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's figures for the evaluation JSON, and the curves behind the plots.

    `frequencies`: in how many training documents each code is gold (None when no train split exists,
    then the frequency breakdown and the unseen recall are None).
    """
    golds, predicted, rankings = view.golds, view.predicted_sets, view.rankings
    micro = metrics.micro_prf(predicted, golds)
    macro = metrics.macro_prf(predicted, golds)
    pairs_conf, pairs_label = _ranked_pairs(view)
    automation = metrics.automation_at_precision(view.suggested, golds, AUTOMATION_TARGET)
    row: dict[str, Any] = {
        "map": metrics.mean_average_precision(rankings, golds),
        "micro_f1": micro.f1,
        "micro_precision": micro.precision,
        "micro_recall": micro.recall,
        "macro_f1": macro.f1,
        "macro_precision": macro.precision,
        "macro_recall": macro.recall,
    }
    for k in K_VALUES:
        row[f"p_at_{k}"] = metrics.mean_precision_at_k(rankings, golds, k)
    for k in K_VALUES:
        row[f"r_at_{k}"] = metrics.mean_recall_at_k(rankings, golds, k)
    row.update(
        {
            "micro_auc": _none_if_nan(metrics.micro_auc(view.ranked, golds)),
            "macro_auc": _none_if_nan(metrics.macro_auc(view.ranked, golds)),
            "exact_match": metrics.exact_match(predicted, golds),
            "ece": calibration.expected_calibration_error(pairs_conf, pairs_label)
            if len(pairs_conf)
            else None,
            "automation_at_95": automation.recall,
            "automation_threshold_95": automation.threshold,
            "encounters_auto_accepted": automation.encounters_auto_accepted,
            "candidate_recall_at_50": metrics.candidate_recall(rankings, golds, CANDIDATE_K),
        }
    )
    if frequencies is not None:
        by_freq: dict[str, Any] | None = breakdown.by_frequency(
            predicted, golds, frequencies, rankings, CANDIDATE_K
        )
        assert by_freq is not None
        row["unseen_recall"] = by_freq["unseen"]["recall"]
    else:
        by_freq = None
        row["unseen_recall"] = None
    row["by_frequency"] = by_freq
    row["by_chapter"] = breakdown.by_group(view.task, predicted, golds, rankings, CANDIDATE_K)
    row["counts"] = {
        "documents": len(golds),
        "documents_with_gold": sum(1 for g in golds if g),
        "gold_codes": sum(len(g) for g in golds),
        "distinct_gold_codes": len({c for g in golds for c in g}),
        "suggested_codes": sum(len(p) for p in predicted),
        "ranked_pairs": len(pairs_conf),
        "ignored_gold_codes": view.ignored_gold,
        "ignored_predicted_codes": view.ignored_predicted,
    }
    curves = {
        "reliability": [vars(b) for b in calibration.reliability_bins(pairs_conf, pairs_label)],
        "precision_recall": [vars(p) for p in metrics.threshold_curve(view.ranked, golds)],
        "automation": [vars(p) for p in metrics.threshold_curve(view.suggested, golds)],
    }
    return row, curves


def _ranked_pairs(view: TaskView) -> tuple[np.ndarray, np.ndarray]:
    conf: list[float] = []
    label: list[int] = []
    for ranking, gold in zip(view.ranked, view.golds, strict=True):
        for code, score in ranking:
            conf.append(min(1.0, max(0.0, score)))
            label.append(int(code in gold))
    return np.array(conf, dtype=float), np.array(label, dtype=int)


def _none_if_nan(value: float) -> float | None:
    return None if value != value else value


@dataclass(frozen=True)
class DocumentRows:
    """Per-document values of one task, in encounter order, for bootstrap resampling.

    `ap`, `p_at_k`, `r_at_k`: nan where the document has no gold code (not averaged, as in MAP);
    `counts`: (tp, fp, fn) at the model's threshold; `exact`: 0/1; `candidates`: (found in top 50, gold).
    """

    ap: np.ndarray
    p_at_k: Mapping[int, np.ndarray]
    r_at_k: Mapping[int, np.ndarray]
    counts: np.ndarray
    exact: np.ndarray
    candidates: np.ndarray


def document_rows(view: TaskView) -> DocumentRows:
    ap, exact, counts, cand = [], [], [], []
    p_at: dict[int, list[float]] = {k: [] for k in K_VALUES}
    r_at: dict[int, list[float]] = {k: [] for k in K_VALUES}
    for ranking, pred, gold in zip(view.rankings, view.predicted_sets, view.golds, strict=True):
        ap.append(metrics.average_precision(ranking, gold))
        for k in K_VALUES:
            p_at[k].append(metrics.precision_at_k(ranking, gold, k) if gold else float("nan"))
            r_at[k].append(metrics.recall_at_k(ranking, gold, k))
        counts.append((len(pred & gold), len(pred - gold), len(gold - pred)))
        exact.append(float(pred == gold))
        top = set(ranking[:CANDIDATE_K])
        cand.append((len(gold & top), len(gold)))
    return DocumentRows(
        ap=np.array(ap, dtype=float),
        p_at_k={k: np.array(v, dtype=float) for k, v in p_at.items()},
        r_at_k={k: np.array(v, dtype=float) for k, v in r_at.items()},
        counts=np.array(counts, dtype=float).reshape(-1, 3),
        exact=np.array(exact, dtype=float),
        candidates=np.array(cand, dtype=float).reshape(-1, 2),
    )


def training_frequencies(train: Sequence[Encounter], task: Task) -> dict[str, int]:
    """In how many training encounters each (normalized) code of `task` is gold."""
    golds: list[Collection[str]] = [
        {normalize_code(task, c) for c in e.gold.codes(task)} for e in train if e.gold
    ]
    return dict(breakdown.document_frequencies(golds))
