"""Where `medcode batch` runs the model: in this process (`local`) or on Ray actors (`ray`).

Both engines take jobs (an encounter and its place in the input) and yield one `Outcome` per job: the
result JSON of `/v1/suggest` or the reason the model could not code it. The model loads once per process:
once for the local loop, once per actor on Ray (Ray Data `map_batches` with an actor class).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from medcode.data.errors import InvalidInputError, MedcodeError
from medcode.data.types import Encounter
from medcode.model.base import Coder
from medcode.model.registry import Registry

log = logging.getLogger(__name__)

LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, a Ray cluster that this process starts binds to 127.0.0.1 only
(Ray then treats the machine as a single-node cluster, as on a laptop). Ray reads it once, at import."""


@dataclass(frozen=True)
class Job:
    shard: int
    position: int
    encounter: Encounter


@dataclass(frozen=True)
class Outcome:
    shard: int
    position: int
    result: dict[str, Any] | None
    error: str | None
    ready_at: float = 0.0
    """When the model of the process that coded it had loaded (`time.time()`): throughput is measured
    from the first model ready to the last result, whatever the model load and Ray start took."""


def load_coder(registry: Registry, model_ref: str) -> Coder:
    """The model as `medcode suggest` loads it (the code set first, then the model the reference names)."""
    from medcode.data.icd10cm import load_icd10cm

    load_icd10cm(registry.cache_dir)
    return registry.load_model(model_ref)


def code_one(coder: Coder, encounter: Encounter) -> tuple[dict[str, Any] | None, str | None]:
    """The `/v1/suggest` result JSON of one encounter, or why the model could not code it. An exception of
    the model is reported by its kind only: its message might quote the note."""
    from medcode.serving.services.encounters import suggest

    try:
        result = suggest(coder, encounter)
    except MedcodeError as exc:
        return None, f"the model refused the encounter: {exc}"
    except Exception as exc:  # one encounter's failure must not stop the run; it goes to the errors file
        log.warning("the model failed on encounter %s (%s)", encounter.encounter_id, type(exc).__name__)
        return None, f"the model failed on this encounter ({type(exc).__name__})"
    return result.model_dump(mode="json"), None


def run_local(jobs: Iterable[Job], coder: Callable[[], Coder]) -> Generator[Outcome]:
    """The in-process loop: one encounter after the other, in input order; `coder()` gives the model."""
    ready_at = 0.0
    for job in jobs:
        model = coder()
        ready_at = ready_at or time.time()
        result, error = code_one(model, job.encounter)
        yield Outcome(job.shard, job.position, result, error, ready_at)


ACTOR_CPUS = 1
"""CPUs each model actor asks Ray for, and the threads its model runs with: an actor whose encoder took every
core of its node would compete with the other actors there (two actors coded no faster than one)."""


class SuggestActor:
    """A Ray Data actor: loads the model once, then codes batches of encounters (JSON strings)."""

    def __init__(self, registry: Registry, model_ref: str) -> None:
        runtime = dataclasses.replace(registry.runtime, threads=ACTOR_CPUS)
        self.coder = load_coder(dataclasses.replace(registry, runtime=runtime), model_ref)
        self.ready_at = time.time()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results: list[str] = []
        errors: list[str] = []
        for payload in batch["encounter"]:
            result, error = code_one(self.coder, Encounter.model_validate_json(payload))
            results.append(json.dumps(result, ensure_ascii=False) if result is not None else "")
            errors.append(error or "")
        return {
            "shard": batch["shard"],
            "position": batch["position"],
            "result": np.array(results, dtype=object),
            "error": np.array(errors, dtype=object),
            "ready_at": np.full(len(results), self.ready_at),
        }


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """An existing cluster ("ray://host:10001", "host:6379", "auto"); None starts a local one."""
    actors: int | None = None
    """Model actors (one CPU each); None: one per CPU of the cluster."""
    batch_size: int = 8
    """Encounters per actor call."""


def run_ray(
    jobs: Iterable[Job], registry: Registry, model_ref: str, options: RayOptions
) -> Generator[Outcome]:
    """Ray Data: the jobs become a dataset, `map_batches(SuggestActor)` codes them on an actor pool, and
    the outcomes stream back as each batch finishes (not in input order)."""
    rows = [
        {"shard": j.shard, "position": j.position, "encounter": j.encounter.model_dump_json()} for j in jobs
    ]
    if not rows:
        return
    ray, started = _connect(options)
    try:
        import ray.data

        # Ray Data's execution-plan lines and its note that its own bars are off are not for our users
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # medcode's own bar counts notes
        actors = options.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # blocks of at least batch_size rows: Ray Data then gives an actor one block per call, and each
        # call's results come back as soon as it ends (smaller blocks are bundled into longer calls)
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // options.batch_size))
        del rows
        coded = dataset.map_batches(
            SuggestActor,
            fn_constructor_kwargs={"registry": registry, "model_ref": model_ref},
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=options.batch_size,
            batch_format="numpy",
            num_cpus=ACTOR_CPUS,
        )
        for row in coded.iter_rows():
            result = json.loads(row["result"]) if row["result"] else None
            yield Outcome(
                int(row["shard"]), int(row["position"]), result, row["error"] or None, float(row["ready_at"])
            )
    finally:
        if started:
            ray.shutdown()


def _connect(options: RayOptions) -> tuple[Any, bool]:
    """Join the cluster at `options.address`, or start a local one on 127.0.0.1 with a CPU per actor (at
    least one per core). Returns the ray module and whether this call started the cluster."""
    if options.address is None:
        if "ray" in sys.modules and os.environ.get(LOOPBACK_ONLY_ENV) != "0":
            log.warning(
                "Ray was imported before %s=0 was set: the local cluster may listen beyond 127.0.0.1",
                LOOPBACK_ONLY_ENV,
            )
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
    try:
        import ray
    except ImportError:
        raise InvalidInputError(
            "--engine ray needs Ray: pip install 'medcode[batch]' (or 'ray[data]')"
        ) from None

    if ray.is_initialized():
        return ray, False
    if options.address is not None:
        ray.init(address=options.address, logging_level=logging.WARNING)
        return ray, True
    cpus = max(options.actors or 0, os.cpu_count() or 1)
    # ERROR: a cluster of this process alone needs no notes on how to secure or join it
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.ERROR)
    return ray, True
