"""Load a model pack and code CodiEsp notes with it; write each note's codes and confidences as JSON.

Run it twice — once in the pack's training home (with MEDCODE_DATA_DIR), once on a copy of the pack in an empty
MEDCODE_HOME with no MEDCODE_* variables — and compare the two outputs with `--compare A B`:

    MEDCODE_HOME=$HOME_A MEDCODE_DATA_DIR=../shared/datasets python -m benchmarks.pack_portability PACK a.json
    env -i PATH=$PATH HOME=/tmp/empty MEDCODE_HOME=/tmp/empty python -m benchmarks.pack_portability COPY b.json
    python -m benchmarks.pack_portability --compare a.json b.json

`--backend numpy|torch` and `--precision float32|bfloat16|auto` choose how the sentence encoder runs (the
runtime, never the pack): the same pack under two runtimes should give the same codes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from medcode.data.types import Document, Encounter
from medcode.model.pack import load_pack
from medcode.model.runtime import Runtime


def code_notes(
    pack: Path, notes: Path, limit: int, runtime: Runtime | None = None
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]]:
    started = time.perf_counter()
    coder = load_pack(pack, runtime)
    loaded = time.perf_counter()
    first: float | None = None
    results: dict[str, list[tuple[str, float]]] = {}
    for file in sorted(notes.glob("*.txt"))[:limit]:
        encounter = Encounter(
            encounter_id=file.stem, documents=[Document(document_id="d1", text=file.read_text())]
        )
        result = coder.suggest(encounter)
        first = first if first is not None else time.perf_counter() - loaded
        results[file.stem] = [(c.code, c.confidence) for c in result.codes] + [
            (f"candidate:{c.code}", c.confidence) for c in result.candidates
        ]
    timing = {"load_s": round(loaded - started, 1), "first_answer_s": round(first or 0.0, 1)}
    return results, timing


def compare(a: Path, b: Path) -> dict[str, float | int]:
    left, right = json.loads(a.read_text()), json.loads(b.read_text())
    same = sum(1 for k in left if [c for c, _ in left[k]] == [c for c, _ in right.get(k, [])])
    diff = max(
        (abs(x[1] - y[1]) for k in left for x, y in zip(left[k], right.get(k, []), strict=False)), default=0.0
    )
    return {"notes": len(left), "same_code_lists": same, "max_confidence_difference": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs=2, type=Path, help="PACK OUT, or A B with --compare")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--notes", type=Path, default=Path("../shared/datasets/codiesp/dev/text_files_en"))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--backend", choices=["torch", "numpy"], default="torch")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto")
    args = parser.parse_args()
    if args.compare:
        print(json.dumps(compare(*args.paths)))
        return
    runtime = Runtime(precision=args.precision, encoder_backend=args.backend)
    results, timing = code_notes(args.paths[0], args.notes, args.limit, runtime)
    args.paths[1].write_text(json.dumps(results))
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
