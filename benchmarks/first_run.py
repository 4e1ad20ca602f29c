"""Time the quick-start commands of the command line, each in a fresh process, as a user runs them.

    python -m benchmarks.first_run --pack PACK [--runs 3] [--out FILE.json] [--set MEDCODE_X=VALUE]
        [--only suggest|extract|codes]

Measures `medcode suggest --model PACK note.txt`, `medcode extract sentence.txt` and `medcode codes show I10`:
wall seconds and the CPU seconds of the process and its children (user + system, from `os.wait4`), with
the load average before each run (the machine may be shared: CPU seconds are what a quiet machine's wall
time comes close to). One untimed run of each command first fills the caches a first run fills (the parsed
ICD-10-CM tabular and the text lexicon under MEDCODE_HOME/cache); figures are the median of `--runs`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NOTE = (
    "67-year-old woman with type 2 diabetes mellitus and essential hypertension, admitted for community "
    "acquired pneumonia of the right lower lobe. She denies chest pain. No history of asthma.\n"
)
SENTENCE = "Patient denies chest pain but has type 2 diabetes.\n"


def timed(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `argv`: wall seconds, exit code, the size of its stderr (no progress bars expected: not a tty)."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "rc": proc.returncode, "stderr": err.decode(errors="replace"), "load": load}


def measure(argv: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    import resource

    subprocess.run(argv, capture_output=True, env=env, check=False)  # fill the caches a first run fills
    rows = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        row = timed(argv, env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        row["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows.append(row)
    if any(r["rc"] != 0 for r in rows):
        raise SystemExit(f"{' '.join(argv)} failed: {rows[-1]['stderr'][-300:]}")
    return {
        "command": " ".join(argv[2:]),
        "wall_s": round(statistics.median(r["wall_s"] for r in rows), 2),
        "cpu_s": round(statistics.median(r["cpu_s"] for r in rows), 2),
        "load_avg_1m": [round(r["load"], 1) for r in rows],
        "stderr_bytes": len(rows[-1]["stderr"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True, help="a trained model pack folder")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None, help="MEDCODE_HOME (default: a new empty one)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MEDCODE_X=VALUE",
        help="a setting for the timed commands (e.g. MEDCODE_ENCODER_BACKEND=torch); repeatable",
    )
    parser.add_argument("--only", choices=["suggest", "extract", "codes"], default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="first-run-"))
    (work / "note.txt").write_text(NOTE)
    (work / "sentence.txt").write_text(SENTENCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDCODE_", "TQDM_"))}
    env["MEDCODE_HOME"] = str(args.home or work / "home")
    for setting in args.set:
        name, _, value = setting.partition("=")
        env[name] = value
    medcode = [sys.executable, "-m", "medcode.cli"]
    commands = [
        [*medcode, "suggest", "--model", str(args.pack), str(work / "note.txt"), "--compact"],
        [*medcode, "extract", str(work / "sentence.txt"), "--compact"],
        [*medcode, "codes", "show", "I10"],
    ]
    results = [measure(argv, env, args.runs) for argv in commands if args.only in (None, argv[3])]
    report = {
        "pack": str(args.pack),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "settings": args.set,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
