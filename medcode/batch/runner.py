"""One `medcode batch` run: cut the input into shards, skip the finished ones, code the rest on an engine,
commit each shard when its last encounter is back, and say what happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medcode.batch.engines import Job, Outcome, RayOptions, load_coder, run_local, run_ray
from medcode.batch.inputs import BatchInput, Item
from medcode.batch.output import BatchOutput, Coded, Failure
from medcode.data.types import Encounter
from medcode.model.base import Coder
from medcode.model.registry import Registry
from medcode.serving.services.encounters import EncounterLimits

Engine = Literal["local", "ray"]
Submit = Callable[[Sequence[tuple[Encounter, dict[str, Any]]]], None]
"""Receives a shard's encounters with their results before the shard is marked finished (it may be
called again with the same encounters after a crash, so it must be safe to repeat)."""


@dataclass(frozen=True)
class BatchOptions:
    engine: Engine = "local"
    model_ref: str = "champion"
    shard_size: int = 1000
    """Encounters per output file; a rerun must use the same size."""
    parquet: bool = False
    ray: RayOptions = field(default_factory=RayOptions)


@dataclass
class Summary:
    """What a run did: encounters coded, failed (in the errors file) and skipped (finished earlier)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    """Encounters of shards a previous run finished (not read again)."""
    shards: int = 0
    """Output files this run wrote."""
    seconds: float = 0.0
    """Wall time of the run."""
    first_result: float | None = None
    """Seconds from the start to the first result (model load and Ray start included)."""
    ready_at: float | None = None
    last_at: float | None = None
    """Wall clock (`time.time()`) when the first model was ready, and of the last result."""

    def to_json(self) -> dict[str, Any]:
        processed = self.done + self.failed
        steady = None
        if self.ready_at is not None and self.last_at is not None and self.last_at > self.ready_at:
            steady = round(self.done / (self.last_at - self.ready_at), 3)
        return {
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "shards_written": self.shards,
            "seconds": round(self.seconds, 3),
            "notes_per_second": round(processed / self.seconds, 3) if self.seconds > 0 else None,
            "steady_notes_per_second": steady,
            "first_result_seconds": round(self.first_result, 3) if self.first_result is not None else None,
        }


@dataclass
class _Shard:
    expected: int
    coded: list[Coded] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    labels: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Position -> (encounter_id, source) of the encounters sent to the model, for the errors file."""
    encounters: dict[int, Encounter] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.coded) + len(self.failed) == self.expected


def run_batch(
    source: BatchInput,
    out: Path,
    options: BatchOptions,
    *,
    registry: Registry,
    limits: EncounterLimits,
    submit: Submit | None = None,
    progress: bool = False,
) -> Summary:
    """Code every encounter of `source` not already coded in `out` (see `medcode.batch.output`)."""
    from tqdm import tqdm

    start = time.perf_counter()
    output = BatchOutput.open(
        out,
        {
            "input": source.fingerprint(),
            "format": source.format,
            "shard_size": options.shard_size,
            "model": options.model_ref,
        },
        parquet=options.parquet,
    )
    summary = Summary()
    open_shards: dict[int, _Shard] = {}
    bar = tqdm(total=source.count(), unit="note", disable=not progress, dynamic_ncols=True)

    def commit(number: int, shard: _Shard) -> None:
        before = None
        if submit is not None:
            before = lambda coded: submit([(shard.encounters[c.position], c.result) for c in coded])  # noqa: E731
        output.commit(number, shard.coded, shard.failed, before_commit=before)
        summary.done += len(shard.coded)
        summary.failed += len(shard.failed)
        summary.shards += 1

    def jobs() -> Iterator[Job]:
        for number, items in _shards(source.items(limits), options.shard_size):
            if output.finished(number):
                summary.skipped += len(items)
                bar.total -= len(items)
                bar.refresh()
                continue
            shard = _Shard(expected=len(items))
            shard.failed = [
                Failure(i.position, i.encounter_id, i.source, i.error) for i in items if i.error is not None
            ]
            bar.update(len(shard.failed))
            good = [i for i in items if i.error is None and i.encounter is not None]
            if not good:
                commit(number, shard)
                continue
            shard.labels = {i.position: (i.encounter_id or "", i.source) for i in good}
            if submit is not None:
                shard.encounters = {i.position: i.encounter for i in good if i.encounter is not None}
            open_shards[number] = shard
            for item in good:
                assert item.encounter is not None
                yield Job(number, item.position, item.encounter)

    try:
        with closing(_engine(jobs(), options, registry)) as outcomes:
            for outcome in outcomes:
                if summary.first_result is None:
                    summary.first_result = time.perf_counter() - start
                summary.ready_at = min(summary.ready_at or outcome.ready_at, outcome.ready_at)
                summary.last_at = time.time()
                shard = open_shards[outcome.shard]
                if outcome.result is not None:
                    shard.coded.append(Coded(outcome.position, outcome.result))
                else:
                    encounter_id, where = shard.labels[outcome.position]
                    shard.failed.append(Failure(outcome.position, encounter_id, where, outcome.error or ""))
                bar.update(1)
                if shard.complete:
                    commit(outcome.shard, open_shards.pop(outcome.shard))
    finally:
        bar.close()
        output.collect_errors()
        summary.seconds = time.perf_counter() - start
    return summary


def _engine(jobs: Iterator[Job], options: BatchOptions, registry: Registry) -> Generator[Outcome]:
    if options.engine == "ray":
        return run_ray(jobs, registry, options.model_ref, options.ray)
    return run_local(jobs, _Lazy(registry, options.model_ref))


class _Lazy:
    """The model, loaded at the first encounter (a rerun with every shard finished loads nothing)."""

    def __init__(self, registry: Registry, model_ref: str) -> None:
        self.registry, self.model_ref = registry, model_ref
        self._coder: Coder | None = None

    def __call__(self) -> Coder:
        if self._coder is None:
            self._coder = load_coder(self.registry, self.model_ref)
        return self._coder


def _shards(items: Iterable[Item], size: int) -> Iterator[tuple[int, list[Item]]]:
    """Consecutive items grouped by `position // size`."""
    current: list[Item] = []
    number = 0
    for item in items:
        shard = item.position // size
        if current and shard != number:
            yield number, current
            current = []
        number = shard
        current.append(item)
    if current:
        yield number, current
