"""Fit the index-walk confidence floors of a trained default pack on its training notes, and write a copy of
the pack that carries them (for a pack fitted without them; `medcode train` fits them when the preset config
sets `fit_walk_floors`).

    .venv/bin/python benchmarks/walk_floors.py --pack /tmp/s5/train/pack \\
        --data-dir /work/shared/datasets/codiesp --out /tmp/pack-with-floors

The floors come from the training split only (the notes the pack was trained on), read with the pack's own
text pipeline and index walker; the encoder is not needed (walk codes do not depend on it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from medcode.data.corpora import load_corpus
from medcode.model.candidates.generate import read_encounter
from medcode.model.pack import load_pack
from medcode.training.default import fit_walk_floors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="the CodiEsp folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", type=Path, required=True, help="folder for the copy with the floors")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    coder = load_pack(args.pack)
    generator = coder.resources.generator  # type: ignore[attr-defined]
    notes, gold = [], []
    for encounter in load_corpus("codiesp", args.data_dir, args.split):
        view = read_encounter(encounter, coder.extractor, None)  # type: ignore[attr-defined]
        notes.append((view, generator.generate(view)))
        gold.append(set(encounter.gold.diagnosis) if encounter.gold else set())
    floors = fit_walk_floors(notes, gold)
    shutil.copytree(args.pack, args.out, dirs_exist_ok=False)
    manifest_file = args.out / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["config"]["walk_floors"] = floors
    manifest_file.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(
        json.dumps(
            {"notes": len(notes), "walk_floors": floors, "seconds": round(time.perf_counter() - started)}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
