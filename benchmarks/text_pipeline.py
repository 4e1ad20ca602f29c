"""Benchmark of the clinical text pipeline on CodiEsp English notes (figures go to text_pipeline.md).

    python benchmarks/text_pipeline.py [--data-dir DIR] [--split dev] [--repeat 2] [--limit N]

Runs on one core (torch and BLAS threads set to 1; the pipeline itself is single-threaded Python). Times
`TextPipeline.extract` over the split's notes after a warm-up, and reports documents per second (wall
clock, and per CPU second of this process, which stays meaningful on a shared machine; the load average is
printed too),
characters per second, mentions per document (by type and assertion), section coverage, and how many of
the gold codes appear among the concepts of the mentions found (exact code, or same 3-character category;
present mentions only, and counting negated/family/hypothetical mentions too: CodiEsp codes some negated
findings, e.g. "no fever" -> R50.9).
The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.text_pipeline")


def _one_core() -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is not needed by the text pipeline
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="CodiEsp folder or datasets root")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over the notes")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N notes (0: all)")
    return parser


def _codes_found(concepts: set[str], gold: list[str]) -> tuple[int, int]:
    exact = sum(1 for code in gold if code in concepts)
    categories = {c[:3] for c in concepts if "." in c or len(c) == 3}
    pcs_prefixes = {c[:4] for c in concepts if "." not in c and len(c) >= 4}
    near = sum(1 for code in gold if code[:3] in categories or code[:4] in pcs_prefixes or code in concepts)
    return exact, near


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _one_core()
    from medcode.data.codiesp import read_split
    from medcode.model.text import get_pipeline
    from medcode.settings import get_settings

    data_dir = args.data_dir or get_settings().data_dir
    if data_dir is None:
        print("set MEDCODE_DATA_DIR or pass --data-dir", file=sys.stderr)
        return 2
    encounters = read_split(Path(data_dir), args.split).encounters
    if args.limit:
        encounters = encounters[: args.limit]
    texts = [e.documents[0].text for e in encounters]

    started = time.perf_counter()
    pipeline = get_pipeline(get_settings().data_dir, get_settings().cache_dir)
    startup = time.perf_counter() - started
    pipeline.extract(texts[0])  # warm-up

    rates: list[float] = []
    cpu_rates: list[float] = []
    results = []
    load_before = os.getloadavg()[0]
    for _ in range(max(1, args.repeat)):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        results = [pipeline.extract(text, e.encounter_id) for text, e in zip(texts, encounters, strict=True)]
        rates.append(len(texts) / (time.perf_counter() - begin))
        cpu_rates.append(len(texts) / (time.process_time() - begin_cpu))

    mentions = [m for doc in results for m in doc]
    by_type = Counter(m.type for m in mentions)
    by_assertion = Counter(
        name for m in mentions for name, value in m.assertion.model_dump().items() if value
    )
    sections = Counter(m.section for m in mentions)
    offsets_ok = all(
        m.text == text[m.start : m.end] for text, doc in zip(texts, results, strict=True) for m in doc
    )
    gold_total = {"diagnosis": 0, "procedure": 0}
    found_exact = {"diagnosis": 0, "procedure": 0}
    found_near = {"diagnosis": 0, "procedure": 0}
    found_any = {"diagnosis": 0, "procedure": 0}
    for encounter, doc in zip(encounters, results, strict=True):
        concepts = {c for m in doc if m.assertion.is_present for c in m.concepts}
        every = {c for m in doc for c in m.concepts}
        gold = encounter.gold
        if gold is None:
            continue
        for task, codes in (("diagnosis", gold.diagnosis), ("procedure", gold.procedure)):
            exact, near = _codes_found(concepts, codes)
            gold_total[task] += len(codes)
            found_exact[task] += exact
            found_near[task] += near
            found_any[task] += _codes_found(every, codes)[1]
    chars = sum(len(t) for t in texts)
    out: dict[str, Any] = {
        "benchmark": "text_pipeline",
        "split": args.split,
        "documents": len(texts),
        "mean_chars_per_document": round(chars / len(texts), 1),
        "startup_seconds": round(startup, 2),
        "lexicon_keys": len(pipeline.lexicon),
        "docs_per_second": round(statistics.median(rates), 1),
        "docs_per_second_runs": [round(r, 1) for r in rates],
        "docs_per_cpu_second": round(statistics.median(cpu_rates), 1),
        "load_average_before": round(load_before, 2),
        "chars_per_second": round(statistics.median(rates) * chars / len(texts)),
        "mentions_per_document": round(len(mentions) / len(texts), 2),
        "mentions_by_type": dict(by_type),
        "assertions_per_document": {k: round(v / len(texts), 2) for k, v in sorted(by_assertion.items())},
        "mentions_by_section": dict(sections.most_common(8)),
        "offsets_exact": offsets_ok,
        "gold_codes_in_concepts": {
            task: {
                "gold": gold_total[task],
                "exact": round(found_exact[task] / gold_total[task], 3) if gold_total[task] else None,
                "category": round(found_near[task] / gold_total[task], 3) if gold_total[task] else None,
                "category_any_assertion": round(found_any[task] / gold_total[task], 3)
                if gold_total[task]
                else None,
            }
            for task in gold_total
        },
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}",
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
