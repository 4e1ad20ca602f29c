"""PNG plots of an evaluation report (matplotlib, Agg backend; imported only when a report is written)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medcode.evaluation.breakdown import BUCKETS

COLORS = {"diagnosis": "#1f77b4", "procedure": "#ff7f0e"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(report: Mapping[str, Any], curves: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """reliability.png, precision_recall.png, automation.png, by_frequency.png, by_chapter.png."""
    plt = _pyplot()
    written = [
        _reliability(plt, report, curves, out_dir / "reliability.png"),
        _precision_recall(plt, report, curves, out_dir / "precision_recall.png"),
        _automation(plt, report, curves, out_dir / "automation.png"),
        _by_frequency(plt, report, out_dir / "by_frequency.png"),
        _by_chapter(plt, report, out_dir / "by_chapter.png"),
    ]
    return written


def _title(report: Mapping[str, Any], what: str) -> str:
    return f"{what} — {report['model']} on {report['dataset']}/{report['split']}"


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _reliability(plt: Any, report: Mapping[str, Any], curves: Mapping[str, Any], path: Path) -> Path:
    tasks = list(curves)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        bins = curves[task]["reliability"]
        centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
        width = bins[0]["upper"] - bins[0]["lower"] if bins else 0.1
        acc = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
        ax.bar(centers, acc, width=width * 0.9, color=COLORS.get(task, "gray"), alpha=0.8, label="observed")
        for c, b, a in zip(centers, bins, acc, strict=True):
            if b["count"]:
                ax.text(c, min(a + 0.02, 0.95), str(b["count"]), ha="center", fontsize=6, rotation=90)
        conf = [(c, b["mean_confidence"]) for c, b in zip(centers, bins, strict=True) if b["count"]]
        if conf:
            ax.plot([c for c, _ in conf], [m for _, m in conf], "k.", label="mean confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ece = report["tasks"][task].get("ece")
        ax.set_title(f"{task} (ECE {ece:.3f})" if isinstance(ece, float) else task)
        ax.set_xlabel("confidence")
        ax.set_ylabel("share of codes that are gold (bar labels: pairs)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(_title(report, "Reliability diagram"), fontsize=10)
    return _save(plt, fig, path)


def _precision_recall(plt: Any, report: Mapping[str, Any], curves: Mapping[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.8))
    for task, c in curves.items():
        row = report["tasks"][task]
        _recall_precision_line(ax, task, c["precision_recall"], f"{task} (MAP {row['map']:.3f})")
        ax.plot([row["micro_recall"]], [row["micro_precision"]], "o", color=COLORS.get(task))
    return _save_recall_axes(
        plt,
        fig,
        ax,
        path,
        xlabel="recall (all gold codes)",
        ylabel="precision",
        title=_title(report, "Precision-recall over ranked codes (dot: model threshold)"),
    )


def _automation(plt: Any, report: Mapping[str, Any], curves: Mapping[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.8))
    for task, c in curves.items():
        at_95 = report["tasks"][task]["automation_at_95"]
        _recall_precision_line(ax, task, c["automation"], f"{task} (at 95%: {at_95:.3f})")
    ax.axhline(0.95, color="gray", linestyle="--", linewidth=1, label="precision 0.95")
    return _save_recall_axes(
        plt,
        fig,
        ax,
        path,
        xlabel="share of gold codes auto-accepted",
        ylabel="precision of auto-accepted codes",
        title=_title(report, "Automation as the confidence cut-off varies"),
    )


def _save_recall_axes(
    plt: Any, fig: Any, ax: Any, path: Path, *, xlabel: str, ylabel: str, title: str
) -> Path:
    """The frame the curve plots share (a share on x, precision on y, both from 0 to 1), then the file."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _recall_precision_line(ax: Any, task: str, points: list[dict[str, float]], label: str) -> None:
    """One task's curve of (recall, precision) points, in the task's colour; nothing when it has none."""
    if points:
        ax.plot(
            [p["recall"] for p in points],
            [p["precision"] for p in points],
            color=COLORS.get(task),
            label=label,
        )


def _by_frequency(plt: Any, report: Mapping[str, Any], path: Path) -> Path:
    tasks = list(report["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.5), squeeze=False)
    metrics = ("precision", "recall", "f1", "candidate_recall_at_50")
    for ax, task in zip(axes[0], tasks, strict=True):
        freq = report["tasks"][task].get("by_frequency")
        ax.set_title(task)
        if not freq:
            ax.text(0.5, 0.5, "no training frequencies", ha="center", va="center")
            ax.set_axis_off()
            continue
        width = 0.8 / len(metrics)
        for i, metric in enumerate(metrics):
            values = [freq[b].get(metric) or 0.0 for b in BUCKETS]
            xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(BUCKETS))]
            ax.bar(xs, values, width=width, label=metric)
        ax.set_xticks(range(len(BUCKETS)))
        ax.set_xticklabels([f"{b}\n({freq[b]['n_gold']} gold)" for b in BUCKETS])
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.suptitle(_title(report, "Results by code frequency in training"), fontsize=10)
    return _save(plt, fig, path)


def _by_chapter(plt: Any, report: Mapping[str, Any], path: Path) -> Path:
    chapters = report["tasks"].get("diagnosis", {}).get("by_chapter") or {}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [g for g, v in chapters.items() if v.get("n_gold")]
    if names:
        f1 = [chapters[g].get("f1") or 0.0 for g in names]
        recall = [chapters[g].get("recall") or 0.0 for g in names]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], f1, width=0.4, label="F1")
        ax.bar([x + 0.2 for x in xs], recall, width=0.4, label="recall")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names)
        ax.set_xlabel("ICD-10-CM chapter")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no diagnosis gold codes", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title(_title(report, "Diagnosis results by ICD-10-CM chapter"), fontsize=9)
    return _save(plt, fig, path)
