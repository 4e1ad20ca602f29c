"""The I/O edge of the evaluation: load a model and a corpus, run the model over the encounters.

The model is only ever asked for `suggest(encounter)`: the evaluation reads its outputs and never fits a
threshold or a calibration (those come with the model pack, fitted on validation data).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcode.data.errors import DatasetNotFoundError, MedcodeError
from medcode.data.types import Encounter, Result, Task
from medcode.evaluation.metrics import latency_summary
from medcode.evaluation.scoring import TASKS, normalize_code, training_frequencies
from medcode.model.base import Coder
from medcode.settings import get_settings

log = logging.getLogger(__name__)


def load_coder(ref: str | None = None) -> Coder:
    """Any model reference `medcode.model.registry.load_model` understands: champion, builtin, models:/..., a path."""
    settings = get_settings()
    return settings.registry.load_model(ref or settings.model_ref)


def resolve_data_dir(dataset: str, data_dir: Path | None) -> Path:
    """The --data-dir given, or `$MEDCODE_DATA_DIR/<dataset>` when it is not."""
    if data_dir is not None:
        return data_dir
    root = get_settings().data_dir
    if root is None:
        raise DatasetNotFoundError("give --data-dir (or set MEDCODE_DATA_DIR)")
    return root / dataset


def load_encounters(dataset: str, data_dir: Path, split: str, limit: int | None = None) -> list[Encounter]:
    """The encounters of one split, through `medcode.data.corpora.load_corpus` (CodiEsp, JSONL...)."""
    from medcode.data.corpora import load_corpus

    if not data_dir.exists():
        raise DatasetNotFoundError(f"no such data folder or file: {data_dir}")
    encounters = list(load_corpus(dataset, data_dir, split))
    if limit is not None:
        if limit <= 0:
            raise MedcodeError("--limit must be positive")
        encounters = encounters[:limit]
    if not encounters:
        raise DatasetNotFoundError(f"no encounters in {dataset} {split} under {data_dir}")
    return encounters


def load_training_frequencies(
    dataset: str, data_dir: Path, split: str, train_split: str = "train"
) -> tuple[dict[Task, dict[str, int]] | None, list[Encounter]]:
    """Code frequencies in the train split of the same dataset (None when there is none to read).

    A single JSONL file has no separate train split: no frequencies then.
    """
    if data_dir.is_file():
        return None, []
    try:
        train = load_encounters(dataset, data_dir, train_split)
    except (MedcodeError, OSError) as exc:
        log.warning("no training split for code frequencies (%s)", exc)
        return None, []
    if split == train_split:
        log.warning("evaluating on the training split: every gold code counts as seen")
    return {task: training_frequencies(train, task) for task in TASKS}, train


@dataclass
class ModelRun:
    """The results of one model over the encounters, and how long each took."""

    results: list[Result]
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def timing(self) -> dict[str, float]:
        return latency_summary(self.latencies, self.seconds)


def bar_switch(progress: bool) -> dict[str, bool]:
    """tqdm's `disable` for a command's progress flag: off when asked, else left to tqdm, which reads
    TQDM_DISABLE (set by the command line when stderr is not a terminal, unless --progress)."""
    return {} if progress else {"disable": True}


def run_coder(
    coder: Coder, encounters: Sequence[Encounter], *, desc: str = "suggest", progress: bool = True
) -> ModelRun:
    """`coder.suggest` on every encounter, with a progress bar on stderr."""
    from tqdm import tqdm

    run = ModelRun(results=[])
    start = time.perf_counter()
    for encounter in tqdm(encounters, desc=desc, unit="note", file=sys.stderr, **bar_switch(progress)):
        t0 = time.perf_counter()
        result = coder.suggest(encounter)
        run.latencies.append(time.perf_counter() - t0)
        if not isinstance(result, Result):
            raise MedcodeError(f"the model returned {type(result).__name__}, not a Result")
        run.results.append(result)
    run.seconds = time.perf_counter() - start
    return run


CodeFilter = Callable[[str], bool]


def valid_code_filters(
    encounters: Sequence[Encounter], data_dir: Path | None = None
) -> dict[Task, CodeFilter | None]:
    """The valid code set per task, as the CodiEsp evaluation's list of valid codes.

    A code is valid when the code system knows it (the ICD-10-CM tabular, category headers included; the
    ICD-10-PCS list, partial codes that prefix valid ones included, for codes shaped like PCS codes) or when
    it is a gold code of the corpus (CodiEsp's list, the CIE-10-ES 2018 code set, holds every gold code,
    including some ICD-10-CM 2026 no longer has). Procedure codes are not filtered when no PCS list is found.
    """
    corpus_gold: dict[Task, set[str]] = {task: set() for task in TASKS}
    for e in encounters:
        if e.gold:
            for task in TASKS:
                corpus_gold[task].update(normalize_code(task, c) for c in e.gold.codes(task))
    filters: dict[Task, CodeFilter | None] = {}
    for task, known in (("diagnosis", _icd10cm_membership()), ("procedure", _pcs_membership(data_dir))):
        if known is None:
            filters[task] = None
            continue
        gold = corpus_gold[task]

        def accept(code: str, known: CodeFilter = known, gold: set[str] = gold) -> bool:
            return code in gold or known(code)

        filters[task] = accept
    return filters


def _icd10cm_membership() -> CodeFilter:
    from medcode.evaluation.checks import default_terminology

    terminology = default_terminology()

    def known(code: str) -> bool:
        try:
            return terminology.get(code) is not None
        except Exception:  # any lookup failure means "not a valid code"
            return False

    return known


def _pcs_membership(data_dir: Path | None) -> CodeFilter | None:
    """ICD-10-PCS validity for PCS-shaped codes (others pass), from the first PCS list found."""
    from medcode.data.icd10pcs import find_pcs_files, load_icd10pcs, looks_like_pcs

    folders = [get_settings().data_dir]
    if data_dir is not None:
        base = data_dir if data_dir.is_dir() else data_dir.parent
        folders += [base.parent, base]
    for folder in folders:
        if folder is not None and folder.is_dir() and find_pcs_files(folder)[0] is not None:
            pcs = load_icd10pcs(folder, with_tables=False)

            def known(code: str, pcs: Any = pcs) -> bool:
                if len(code) == 5 or not looks_like_pcs(code):  # HCPCS / CPT shapes are not filtered
                    return True
                return pcs.is_known(code)

            return known
    log.info("no ICD-10-PCS code list found: procedure codes are not filtered")
    return None
