"""Active learning: review-queue priorities (lower value = reviewed first) that favour the encounters whose
correction should teach the model most, and first-in-first-out to compare against.

A priority function takes the model's `Result` and returns a float; pass it to the service as
`serving.app.create_app(priority_fn=...)` or to `serving.services.encounters.submit_encounter`.

`uncertainty_priority` is the expected number of wrong yes/no decisions among the encounter's top-ranked
codes: a calibrated confidence p is a wrong call with probability min(p, 1 - p), so codes near 0.5
count most and confident accepts or rejects count little. Encounters with the most expected corrections
come first (the value is negated).
"""

from __future__ import annotations

from collections.abc import Callable

from medcode.data.types import Result

PriorityFn = Callable[[Result], float]
TOP_K = 20
"""Ranked codes per task an encounter's uncertainty is summed over."""


def fifo_priority(result: Result) -> float:
    """Every item the same priority: the queue's id order, first in first out."""
    return 0.0


def expected_corrections(result: Result, top_k: int = TOP_K) -> float:
    """Sum over the top-k ranked codes of each task of min(p, 1 - p)."""
    total = 0.0
    for task in ("diagnosis", "procedure"):
        for code in result.ranked(task)[:top_k]:
            p = min(max(float(code.confidence), 0.0), 1.0)
            total += min(p, 1.0 - p)
    return total


def uncertainty_priority(result: Result) -> float:
    """Most expected corrections first (see the module docstring)."""
    return -expected_corrections(result)


def margin_priority(result: Result) -> float:
    """Smallest distance of a suggested or candidate code from 0.5 first (min-margin sampling)."""
    margins = [abs(float(c.confidence) - 0.5) for c in [*result.codes, *result.candidates]]
    return min(margins, default=0.5)


STRATEGIES: dict[str, PriorityFn] = {
    "fifo": fifo_priority,
    "uncertainty": uncertainty_priority,
    "margin": margin_priority,
}


def priority_of(strategy: str) -> PriorityFn:
    try:
        return STRATEGIES[strategy]
    except KeyError:
        from medcode.data.errors import InvalidInputError

        raise InvalidInputError(
            f"unknown review strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None
