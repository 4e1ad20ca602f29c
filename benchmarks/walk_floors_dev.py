"""CodiEsp dev diagnosis figures of one trained default pack with and without its index-walk floors, on the
same notes read once (one `prepare`, then `suggest_prepared` twice), scored by `evaluation.scoring`; prints a
JSON line every 25 notes.

    .venv/bin/python benchmarks/walk_floors_dev.py --pack /tmp/pack-with-floors \\
        --data-dir /work/shared/datasets/codiesp [--limit 25]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from medcode.data.corpora import load_corpus
from medcode.evaluation.scoring import build_task_view, score_task
from medcode.model.pack import load_pack
from medcode.model.trained.coder import DefaultCoder

METRICS = ("map", "micro_f1", "micro_precision", "micro_recall", "p_at_5")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="the CodiEsp folder")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=0, help="first N notes only (0: all)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    coder = load_pack(args.pack)
    if not isinstance(coder, DefaultCoder):
        parser.error(f"{args.pack} is not a trained default pack")
    config = coder.config
    floors = dict(config.walk_floors)
    encounters = load_corpus("codiesp", args.data_dir, args.split)
    if args.limit:
        encounters = encounters[: args.limit]
    on, off = [], []
    for k, encounter in enumerate(encounters, 1):
        prepared = coder.resources.prepare(encounter, coder.extractor)
        config.walk_floors = floors
        on.append(coder.suggest_prepared(prepared))
        config.walk_floors = {}
        off.append(coder.suggest_prepared(prepared))
        if k % 25 == 0 or k == len(encounters):
            row: dict[str, object] = {
                "notes": k,
                "seconds": round(time.perf_counter() - started),
                "floors": floors,
            }
            for name, results in (("with_floors", on), ("without", off)):
                scores, _ = score_task(build_task_view("diagnosis", encounters[:k], results))
                row[name] = {m: round(float(scores[m]), 4) for m in METRICS}
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
