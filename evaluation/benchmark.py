"""Latency, throughput and memory of a model, per note; results appended to benchmarks/NOTES.md.

    medcode benchmark [--model REF] [--dataset codiesp --data-dir DIR --split dev] [--n 200] [--device cpu]
    python -m evaluation.benchmark ...          (same options)

Without a dataset (and without MEDCODE_DATA_DIR) a handful of short built-in notes is cycled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from medcode.data.errors import MedcodeError
from medcode.data.types import Document, Encounter, Patient
from medcode.model.base import Coder
from medcode.settings import add_model_argument, get_settings

T = TypeVar("T")
log = logging.getLogger(__name__)

SAMPLE_NOTES = (
    "67-year-old woman with type 2 diabetes mellitus and diabetic chronic kidney disease stage 3b, "
    "on insulin. Hypertension controlled on lisinopril. Denies chest pain. Mother had breast cancer.",
    "Patient presents with acute exacerbation of chronic obstructive pulmonary disease. No pneumonia on "
    "chest x-ray. History of tobacco use, quit 5 years ago. Started on prednisone and nebulizers.",
    "Closed fracture of the left distal radius after a fall at home, initial encounter. Closed reduction "
    "and casting performed. No head injury. Follow up in orthopedics clinic in one week.",
    "Community-acquired pneumonia of the right lower lobe with sepsis. Blood cultures drawn, ceftriaxone "
    "and azithromycin started. Rule out pulmonary embolism. Atrial fibrillation on apixaban.",
)


def default_notes_path() -> Path:
    """benchmarks/NOTES.md of the repository this package runs from, else of the working directory."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "benchmarks").is_dir():
        return repo / "benchmarks" / "NOTES.md"
    return Path.cwd() / "benchmarks" / "NOTES.md"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, RAM, torch threads and, on CUDA, the GPU."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = round(os.getloadavg()[0], 2)
    try:
        info["ram_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["ram_gib"] = None
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if device == "cuda" and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch_threads"] = None
    return info


def benchmark_encounters(
    dataset: str | None, data_dir: Path | None, split: str, n: int
) -> tuple[list[Encounter], str]:
    """n encounters to time (cycled when the source has fewer) and a description of where they come from."""
    from medcode.evaluation.runner import load_encounters

    if dataset is not None:
        if data_dir is None:
            root = get_settings().data_dir
            if root is None:
                raise MedcodeError("give --data-dir (or set MEDCODE_DATA_DIR) with --dataset")
            data_dir = root / dataset
        pool = load_encounters(dataset, data_dir, split)
        source = f"{dataset} {split}"
    else:
        pool = [
            Encounter(
                encounter_id=f"bench-{i}",
                patient=Patient(age=60, sex="female"),
                documents=[Document(document_id="d1", text=text)],
            )
            for i, text in enumerate(SAMPLE_NOTES)
        ]
        source = "built-in sample notes"
    if n <= 0:
        raise MedcodeError("--n must be positive")
    return [pool[i % len(pool)] for i in range(n)], source


def load_for_device(ref: str | None, device: str) -> Coder:
    """Load the model and put it on `device` when it can move (a `device=` loader argument or `.to()`)."""
    from medcode.evaluation.runner import load_coder

    if device == "cuda":
        try:
            import torch
        except ImportError as exc:
            raise MedcodeError("--device cuda needs torch") from exc
        if not torch.cuda.is_available():
            raise MedcodeError("--device cuda: no CUDA device is available")
    coder = load_coder(ref)
    mover = getattr(coder, "to", None)
    if callable(mover):
        moved = mover(device)
        return moved if moved is not None else coder  # type: ignore[no-any-return]
    if device != "cpu":
        log.warning("the model takes no device; it runs as loaded")
    return coder


def run_benchmark(
    coder: Coder,
    encounters: Sequence[Encounter],
    *,
    device: str = "cpu",
    warmup: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Time `coder.suggest` per note after `warmup` untimed calls."""
    for encounter in encounters[:warmup]:
        coder.suggest(encounter)
    cuda = _cuda_module(device)
    if cuda is not None:
        cuda.synchronize()
        cuda.reset_peak_memory_stats()

    def suggest(encounter: Encounter) -> None:
        coder.suggest(encounter)
        if cuda is not None:
            cuda.synchronize()

    summary, _ = _time_each(suggest, encounters, warmup=warmup, desc="benchmark", progress=progress)
    return {
        **summary,
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": cuda.max_memory_allocated() / 2**20 if cuda is not None else None,
    }


def run_http_benchmark(
    client: Any,
    encounters: Sequence[Encounter],
    *,
    path: str = "/v1/suggest",
    warmup: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Time POST `path` per note against a running service (`client`: an httpx.Client with its base URL and
    API key). Memory is the server's, not measured here."""

    def post(encounter: Encounter) -> dict[str, Any]:
        response = client.post(path, json=encounter.model_dump(mode="json", exclude={"gold"}))
        if response.status_code != 200:
            raise MedcodeError(f"POST {path} answered {response.status_code}: {response.text[:200]}")
        return response.json()  # type: ignore[no-any-return]

    for encounter in encounters[:warmup]:
        post(encounter)
    summary, bodies = _time_each(post, encounters, warmup=warmup, desc="benchmark (http)", progress=progress)
    version = next((body["model_version"] for body in bodies if body.get("model_version")), "unknown")
    return {**summary, "peak_rss_mb": None, "cuda_peak_mb": None, "model_version": version}


def _time_each(
    call: Callable[[Encounter], T], encounters: Sequence[Encounter], *, warmup: int, desc: str, progress: bool
) -> tuple[dict[str, Any], list[T]]:
    """`call` timed on each note: the note count and size with the latency summary, and the answers."""
    from tqdm import tqdm

    from medcode.evaluation.metrics import latency_summary  # numpy: when used, not at `medcode --help`
    from medcode.evaluation.runner import bar_switch

    latencies: list[float] = []
    answers: list[T] = []
    start = time.perf_counter()
    for encounter in tqdm(encounters, desc=desc, unit="note", file=sys.stderr, **bar_switch(progress)):
        t0 = time.perf_counter()
        answers.append(call(encounter))
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    chars = [sum(len(d.text) for d in e.documents) for e in encounters]
    summary = {
        "n": len(encounters),
        "warmup": warmup,
        "mean_note_chars": sum(chars) / len(chars) if chars else 0,
        **latency_summary(latencies, total),
    }
    return summary, answers


def _cuda_module(device: str) -> Any:
    if device != "cuda":
        return None
    import torch

    return torch.cuda


def notes_section(result: dict[str, Any]) -> str:
    """One dated Markdown section for benchmarks/NOTES.md."""
    m = result["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    cuda = f"{result['cuda_peak_mb']:.0f} MB" if result.get("cuda_peak_mb") is not None else "n/a"
    rss = f"{result['peak_rss_mb']:.0f} MB" if result.get("peak_rss_mb") is not None else "n/a (server)"
    return "\n".join(
        [
            f"## {result['date']} — `{result['model']}` ({result['model_version']}) on {result['device']}",
            "",
            f"- command: `{result['command']}`",
            f"- machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), RAM {m.get('ram_gib')} GiB, "
            f"torch threads {m.get('torch_threads')}{gpu}; Python {m['python']}; load average at the end "
            f"{m.get('load_average')}",
            f"- notes: {result['source']}, {result['n']} timed after {result['warmup']} warm-up "
            f"(mean {result['mean_note_chars']:.0f} characters); model load {result['load_seconds']:.1f} s",
            "",
            "| latency p50 | p95 | p99 | mean | throughput | peak RSS | CUDA peak |",
            "|---|---|---|---|---|---|---|",
            f"| {result['latency_p50_ms']:.1f} ms | {result['latency_p95_ms']:.1f} ms | "
            f"{result['latency_p99_ms']:.1f} ms | {result['latency_mean_ms']:.1f} ms | "
            f"{result['notes_per_second']:.2f} notes/s | {rss} | {cuda} |",
            "",
        ]
    )


NOTES_HEADER = """# Benchmark notes

Measured figures, newest last. `medcode benchmark` (or `python -m evaluation.benchmark`) appends one
dated section per run with the command, the machine and the figures: latency per note (p50/p95/p99 of
`Coder.suggest`, after warm-up), throughput in notes per second, peak memory (process RSS; CUDA peak
allocation on the GPU). Areas write their own notes beside this file (`benchmarks/<area>.md`).

"""


def append_notes(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or not path.read_text().strip():
        path.write_text(NOTES_HEADER)
    with path.open("a") as fh:
        fh.write("\n" + notes_section(result))
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument(
        "--dataset",
        default=None,
        help="corpus to take notes from (default: codiesp when "
        "MEDCODE_DATA_DIR is set, else built-in sample notes)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="corpus folder (default: $MEDCODE_DATA_DIR/DATASET)"
    )
    parser.add_argument("--split", default="dev", help="split to take notes from (default: dev)")
    parser.add_argument("--n", type=int, default=200, help="notes to time (default: 200)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default: 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")
    parser.add_argument(
        "--url",
        default=None,
        help="time POST /v1/suggest of a running service at this base URL instead of loading the model "
        "here (e.g. http://127.0.0.1:8000)",
    )
    parser.add_argument("--api-key", default=None, help="API key for --url (role integration or admin)")
    parser.add_argument(
        "--notes", type=Path, default=None, help="benchmark notes file (default: benchmarks/NOTES.md)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not append to the notes file")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def command_line(args: argparse.Namespace, prefix: Sequence[str], dataset: str | None = None) -> str:
    """The command that reproduces this run (options spelled out, the API key masked), for the notes."""
    dataset = dataset or args.dataset
    parts = [*prefix]
    if getattr(args, "url", None):
        parts += ["--url", args.url, "--api-key", "KEY"]
    else:
        parts += ["--model", args.model or get_settings().model_ref, "--device", args.device]
    if dataset:
        parts += ["--dataset", dataset, "--split", args.split]
    if args.data_dir:
        parts += ["--data-dir", str(args.data_dir)]
    parts += ["--n", str(args.n), "--warmup", str(args.warmup)]
    return shlex.join(parts)


def _http_figures(
    args: argparse.Namespace, encounters: Sequence[Encounter]
) -> tuple[dict[str, Any], str, float]:
    import httpx

    if not args.api_key:
        raise MedcodeError("--url needs --api-key (create one with `medcode keys create --role integration`)")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=120.0) as client:
        figures = run_http_benchmark(client, encounters, warmup=args.warmup, progress=not args.no_progress)
    return figures, f"{args.url.rstrip('/')}/v1/suggest", 0.0


def handle(args: argparse.Namespace, prefix: Sequence[str] | None = None) -> int:
    """Run the benchmark the arguments describe; `prefix` is how the command was called, for the notes."""
    dataset = args.dataset
    if dataset is None and args.data_dir is None:
        root = get_settings().data_dir
        if root is not None and (root / "codiesp").is_dir():
            dataset = "codiesp"
    elif dataset is None:
        raise MedcodeError("--data-dir needs --dataset")
    encounters, source = benchmark_encounters(dataset, args.data_dir, args.split, args.n)
    if args.url:
        figures, ref, load_seconds = _http_figures(args, encounters)
        version = str(figures.pop("model_version"))
    else:
        ref = args.model or get_settings().model_ref
        t0 = time.perf_counter()
        coder = load_for_device(ref, args.device)
        load_seconds = time.perf_counter() - t0
        figures = run_benchmark(
            coder, encounters, device=args.device, warmup=args.warmup, progress=not args.no_progress
        )
        version = str(coder.version)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(args, prefix or ["medcode", "benchmark"], dataset),
        "model": ref,
        "model_version": version,
        "device": "server" if args.url else args.device,
        "source": source,
        "load_seconds": load_seconds,
        **figures,
        "machine": machine_description(args.device),
    }
    if not args.no_write:
        path = append_notes(result, args.notes or default_notes_path())
        result["notes_file"] = str(path)
    if args.format == "json":
        print(json.dumps(result))
    else:
        rss = result["peak_rss_mb"]
        print(
            f"{result['n']} notes ({source}) on {result['device']}: p50 {result['latency_p50_ms']:.1f} ms, "
            f"p95 {result['latency_p95_ms']:.1f} ms, p99 {result['latency_p99_ms']:.1f} ms, "
            f"{result['notes_per_second']:.2f} notes/s"
            + (f", peak RSS {rss:.0f} MB" if rss is not None else "")
        )
        if "notes_file" in result:
            print(f"appended to {result['notes_file']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medcode.evaluation.benchmark", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return handle(args, ["python", "-m", "medcode.evaluation.benchmark"])
    except MedcodeError as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
