"""The Alphabetic Index walk, on and off, with the same knowledge and text pipeline: the US behaviour suite
(tests/model/us_notes.jsonl) by category for the built-in model, and two built-in packs for a CodiEsp dev
A/B with `medcode evaluate --model PACK`.

    .venv/bin/python benchmarks/index_walk.py --data-dir ../shared/datasets [--packs DIR]

Notes in benchmarks/us_coding.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from medcode.model.builtin import BuiltinCoder, BuiltinConfig
from medcode.model.catalog import knowledge_from
from medcode.model.text.sources import full_pipeline

ROOT = Path(__file__).resolve().parent.parent


def _suite():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("us_notes_suite", ROOT / "tests/model/test_us_notes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["us_notes_suite"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the datasets folder (ICD-10-CM index)")
    parser.add_argument("--packs", type=Path, help="also save builtin packs walk_on/ and walk_off/ here")
    parser.add_argument("--cache-dir", type=Path, help="lexicon cache folder")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    knowledge = knowledge_from(args.data_dir)
    if knowledge.index_tree is None:
        print(f"no ICD-10-CM alphabetic index under {args.data_dir}", file=sys.stderr)
        return 2
    pipeline = full_pipeline(args.data_dir, args.cache_dir)
    print(
        f"knowledge and pipeline in {time.perf_counter() - started:.1f} s; {len(knowledge.index_tree)} main terms"
    )
    suite = _suite()
    for walk in (False, True):
        coder = BuiltinCoder(knowledge, pipeline, BuiltinConfig(index_walk=walk))
        outcome = suite.run_suite(coder)
        built = frozenset(outcome.total) - suite.NOT_BUILT
        print(f"\n== built-in, index_walk={walk}\n{outcome.report()}")
        print(
            f"recall on built categories {outcome.recall(built):.3f}, on NOT_BUILT {outcome.recall(suite.NOT_BUILT):.3f}"
        )
        if args.packs is not None:
            folder = coder.save(args.packs / ("walk_on" if walk else "walk_off"))
            print(f"saved {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
