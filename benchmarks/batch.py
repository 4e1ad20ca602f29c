"""Benchmark of `medcode batch` on CodiEsp notes: the in-process loop against Ray with 1 and 2 actors, a
stopped-and-resumed run, and the results checked against `medcode suggest` (figures go to scale.md).

    python benchmarks/batch.py [--data-dir DIR] [--split dev] [--model builtin] [--work DIR] [--limit N]

Each run is a separate `medcode batch` process with a fresh output folder, after one warm-up run that
fills MEDCODE_HOME's caches. Reported per run: wall seconds, notes/s end to end (model load and Ray start
included) and steady notes/s (from the moment the first model was loaded to the last result), seconds to
the first result (start-up: Ray and the model load), and the load average (the machine may be shared). Checks: every run's result files are
byte-identical; a Ray run stopped with Ctrl-C (SIGINT) half-way and a local run killed (SIGKILL) half-way
each resume to the same files with every encounter exactly once; every result equals `medcode suggest`'s.
The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MEDCODE = [sys.executable, "-m", "medcode.cli"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="CodiEsp folder or datasets root")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--work", type=Path, default=Path("benchmark-batch"), help="scratch folder")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N notes (0: all)")
    parser.add_argument("--shard-size", type=int, default=25)
    parser.add_argument("--skip-resume", action="store_true")
    parser.add_argument("--skip-suggest", action="store_true")
    return parser


def write_notes(data_dir: Path, split: str, limit: int, path: Path) -> int:
    from medcode.data.codiesp import read_split
    from medcode.data.jsonl import write_jsonl

    encounters = read_split(data_dir, split).encounters
    if limit:
        encounters = encounters[:limit]
    return write_jsonl(encounters, path)


def run_batch(notes: Path, out: Path, model: str, *extra: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [*MEDCODE, "batch", str(notes), "--out", str(out), "--model", model, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"medcode batch failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        **summary,
        "wall_seconds": round(wall, 1),
        "load_average_before": round(load, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def part_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("part-*.jsonl"))}


def ids_of(out: Path) -> list[str]:
    return [
        json.loads(line)["encounter_id"] for data in part_files(out).values() for line in data.splitlines()
    ]


def stop_half_way(notes: Path, out: Path, model: str, shards: int, sig: int, *extra: str) -> dict[str, Any]:
    """Start a run, stop it with `sig` once half of its shards are written, then rerun it to the end."""
    shutil.rmtree(out, ignore_errors=True)
    command = [*MEDCODE, "batch", str(notes), "--out", str(out), "--model", model, *extra]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    while process.poll() is None and len(list(out.glob("part-*.jsonl"))) < shards // 2:
        time.sleep(0.5)
    written = len(list(out.glob("part-*.jsonl")))
    if sig == signal.SIGKILL:
        os.killpg(process.pid, sig)  # a crash: the whole process tree at once
    else:
        process.send_signal(sig)  # Ctrl-C: the command stops its own workers
    process.wait(timeout=300)
    resumed = subprocess.run(command, capture_output=True, text=True, check=False)
    if resumed.returncode != 0:
        raise SystemExit(f"resumed run failed: {resumed.stderr.strip()[-2000:]}")
    return {
        "signal": signal.Signals(sig).name,
        "shards_before_stop": written,
        "exit_code_of_stopped_run": process.returncode,
        "resumed": json.loads(resumed.stdout.strip().splitlines()[-1]),
    }


def suggest_matches(notes: Path, out: Path, model: str) -> dict[str, int]:
    """What `medcode suggest` prints for each encounter (its own parsing, model loading and JSON, with the
    model loaded once in this process rather than once per note) against the batch results."""
    from medcode.commands.model import parse_encounter
    from medcode.data.icd10cm import load_icd10cm
    from medcode.settings import get_settings

    settings = get_settings()
    load_icd10cm(settings.cache_dir)
    coder = settings.registry.load_model(model)
    batch = {
        json.loads(line)["encounter_id"]: json.loads(line)
        for data in part_files(out).values()
        for line in data.splitlines()
    }
    same = differ = 0
    for line in notes.read_text(encoding="utf-8").splitlines():
        encounter = parse_encounter(line)
        result = json.loads(json.dumps(coder.suggest(encounter).model_dump(mode="json"), ensure_ascii=False))
        if batch.get(result["encounter_id"]) == result:
            same += 1
        else:
            differ += 1
    return {"same": same, "differ": differ}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from medcode.settings import get_settings

    data_dir = args.data_dir or get_settings().data_dir
    if data_dir is None:
        raise SystemExit("give --data-dir or set MEDCODE_DATA_DIR")
    args.work.mkdir(parents=True, exist_ok=True)
    notes = args.work / "notes.jsonl"
    count = write_notes(data_dir, args.split, args.limit, notes)
    shards = -(-count // args.shard_size)
    size = ("--shard-size", str(args.shard_size))
    figures: dict[str, Any] = {"notes": count, "shards": shards, "model": args.model, "cpus": os.cpu_count()}

    warm = args.work / "warm.jsonl"
    warm.write_text(notes.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    run_batch(warm, args.work / "warm", args.model)  # fills the caches under MEDCODE_HOME

    runs = {
        "local": run_batch(notes, args.work / "local", args.model, *size),
        "ray_1_actor": run_batch(
            notes, args.work / "ray1", args.model, *size, "--engine", "ray", "--actors", "1"
        ),
        "ray_2_actors": run_batch(
            notes, args.work / "ray2", args.model, *size, "--engine", "ray", "--actors", "2"
        ),
    }
    figures["runs"] = runs
    print(json.dumps(runs), file=sys.stderr, flush=True)
    reference = part_files(args.work / "local")
    figures["identical_files"] = {
        name: part_files(args.work / folder) == reference
        for name, folder in (("ray1", "ray1"), ("ray2", "ray2"))
    }
    one, two = runs["ray_1_actor"], runs["ray_2_actors"]
    figures["ratios"] = {
        "ray2_over_ray1_steady": _ratio(two["steady_notes_per_second"], one["steady_notes_per_second"]),
        "ray2_over_ray1_end_to_end": _ratio(two["notes_per_second"], one["notes_per_second"]),
        "ray2_over_local_steady": _ratio(
            two["steady_notes_per_second"], runs["local"]["steady_notes_per_second"]
        ),
        "ray1_over_local_steady": _ratio(
            one["steady_notes_per_second"], runs["local"]["steady_notes_per_second"]
        ),
    }
    if not args.skip_resume:
        resumes = {}
        for name, sig, extra in (
            ("ray_2_actors_ctrl_c", signal.SIGINT, ("--engine", "ray", "--actors", "2")),
            ("local_killed", signal.SIGKILL, ()),
        ):
            out = args.work / f"resume-{name}"
            report = stop_half_way(notes, out, args.model, shards, sig, *size, *extra)
            ids = ids_of(out)
            report["each_encounter_once"] = len(ids) == len(set(ids)) == count
            report["identical_to_uninterrupted"] = part_files(out) == reference
            resumes[name] = report
        figures["resume"] = resumes
        print(json.dumps(resumes), file=sys.stderr, flush=True)
    if not args.skip_suggest:
        figures["suggest"] = suggest_matches(notes, args.work / "ray2", args.model)
    print(json.dumps(figures))
    return 0


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


if __name__ == "__main__":
    sys.exit(main())
