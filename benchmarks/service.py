"""Latency and throughput of `POST /v1/suggest` on a real uvicorn server on 127.0.0.1.

    python benchmarks/service.py [--model REF] [--concurrency 1 8] [--requests 200] [--data-dir DIR]
    python benchmarks/service.py --model echo --in-process      (the service's own overhead, no model)

By default the server is `medcode serve` in a child process (its own interpreter, as in production) on a
fresh SQLite database with a fresh integration key; `--in-process` runs uvicorn in a thread of this
process instead (needed for the `echo` model, which answers without doing any work). Notes come from
CodiEsp dev (`--data-dir`, default `$MEDCODE_DATA_DIR/codiesp`), else from a few synthetic notes of
CodiEsp size. Each concurrency level sends `--requests` requests (after `--warmup` unmeasured ones)
from that many client threads; the report gives p50/p95/p99 latency and throughput. The last line of
stdout is one JSON object; `--notes-file benchmarks/service.md` appends a dated Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

SYNTHETIC = (
    "A 67-year-old woman was admitted with worsening dyspnoea and bilateral leg oedema. She has type 2 "
    "diabetes mellitus with diabetic chronic kidney disease stage 3b and long-standing hypertension treated "
    "with lisinopril. She denies chest pain and fever. Her mother had breast cancer. On examination "
    "blood pressure was 168/94 mmHg, heart rate 96 per minute, and there were bibasal crackles. Chest "
    "radiograph showed pulmonary congestion with small bilateral pleural effusions. Echocardiography "
    "revealed a left ventricular ejection fraction of 35 percent. She was treated with intravenous "
    "furosemide, her insulin was adjusted, and she was discharged on day six with a diagnosis of acute on "
    "chronic systolic heart failure. Follow-up in the heart failure clinic was arranged. ",
    "A 45-year-old man presented to the emergency department with right lower quadrant abdominal pain, "
    "nausea and a temperature of 38.4 C. Laboratory tests showed leukocytosis. Computed tomography of "
    "the abdomen showed acute appendicitis without perforation. He underwent laparoscopic appendectomy "
    "on the day of admission; the postoperative course was uneventful and he was discharged on the "
    "second postoperative day. There was no history of inflammatory bowel disease. He is a smoker of "
    "twenty cigarettes a day and was advised to stop. ",
)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    notes = _notes(args.data_dir, args.max_notes)
    runs: list[dict[str, Any]] = []
    with _server(args) as (base_url, key):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
            health = http.get("/health").json()
            for i in range(args.warmup):
                _post(http, notes[i % len(notes)], f"warm-{i}")
        for concurrency in args.concurrency:
            runs.append(_run(base_url, headers, notes, concurrency, args.requests))
            print(_row(runs[-1]), file=sys.stderr)
    report = {
        "benchmark": "service_suggest",
        "model": health.get("model_version"),
        "model_ref": args.model,
        "server": "in-process thread" if args.in_process else "medcode serve (child process)",
        "notes": {
            "source": notes_source(args.data_dir),
            "count": len(notes),
            "mean_chars": _mean_chars(notes),
        },
        "machine": machine(),
        "runs": runs,
    }
    return publish(report, args.notes_file, _append_notes, argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="builtin", help="model reference for the server (default builtin)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client threads per run")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per run (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first (default 10)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="CodiEsp folder (default $MEDCODE_DATA_DIR/codiesp)"
    )
    parser.add_argument("--max-notes", type=int, default=100, help="distinct notes to cycle (default 100)")
    parser.add_argument("--in-process", action="store_true", help="uvicorn in a thread of this process")
    parser.add_argument("--notes-file", help="append a dated Markdown section to this file")
    return parser


# -- notes ---------------------------------------------------------------------------------------------


def _codiesp_dir(data_dir: Path | None) -> Path | None:
    if data_dir is not None:
        return data_dir
    from medcode.settings import get_settings

    root = get_settings().data_dir
    return root / "codiesp" if root is not None and (root / "codiesp").is_dir() else None


def notes_source(data_dir: Path | None) -> str:
    folder = _codiesp_dir(data_dir)
    return f"CodiEsp dev ({folder})" if folder is not None else "synthetic (CodiEsp-size)"


def _notes(data_dir: Path | None, limit: int | None = None) -> list[str]:
    """The texts of CodiEsp dev's first `limit` notes (all: None), else a few synthetic CodiEsp-size notes."""
    folder = _codiesp_dir(data_dir)
    if folder is None:
        return [SYNTHETIC[i % 2] * 2 for i in range(4)]
    from medcode.data.corpora import load_corpus

    encounters = load_corpus("codiesp", folder, "dev")[:limit]
    return [enc.documents[0].text for enc in encounters]


def publish(
    report: dict[str, Any],
    notes_file: str | None,
    write_notes: Callable[[Path, dict[str, Any], list[str]], None],
    argv: list[str] | None,
) -> int:
    """The benchmarks' output: `--notes-file` gets a dated Markdown section (`write_notes`), and the last
    line of stdout is the report as one JSON object."""
    if notes_file:
        write_notes(Path(notes_file), report, argv if argv is not None else sys.argv[1:])
    print(json.dumps(report, sort_keys=True))
    return 0


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on, for its report."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def _mean_chars(notes: list[str]) -> int:
    return round(statistics.mean(len(n) for n in notes))


# -- server --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="medcode-bench-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        key = _create_key(db_url)
        if args.in_process:
            with _thread_server(args.model, db_url) as url:
                yield url, key
        else:
            with _child_server(args.model, db_url) as url:
                yield url, key


def _create_key(db_url: str) -> str:
    from medcode.serving.auth import SYSTEM_PRINCIPAL
    from medcode.serving.db import Database
    from medcode.serving.services import keys

    database = Database.connect(db_url)
    try:
        with database.sessions() as session:
            return keys.create(session, SYSTEM_PRINCIPAL, "integration", "benchmark").key
    finally:
        database.dispose()


class EchoCoder:
    """Answers at once with no codes: what is left is the service's own cost."""

    version = "echo"
    code_set_version = "ICD-10-CM 2026"

    def suggest(self, encounter: Any) -> Any:
        from medcode.data.types import Result

        return Result(
            encounter_id=encounter.encounter_id, model_version="echo", code_set_version="ICD-10-CM 2026"
        )


@contextlib.contextmanager
def _thread_server(model: str, db_url: str) -> Iterator[str]:
    from medcode.serving.app import create_app
    from medcode.serving.server import serve_in_thread
    from medcode.settings import get_settings

    settings = get_settings().model_copy(
        update={"database_url": db_url, "model_ref": model, "model_poll_seconds": 0}
    )
    app = create_app(settings, coder=EchoCoder() if model == "echo" else None)
    with serve_in_thread(app, timeout=600) as url:
        yield url


@contextlib.contextmanager
def _child_server(model: str, db_url: str) -> Iterator[str]:
    if model == "echo":
        raise SystemExit("the echo model runs only with --in-process")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "medcode.cli",
        "serve",
        "--port",
        str(port),
        "--db",
        db_url,
        "--model",
        model,
    ]
    env = dict(os.environ, MEDCODE_MODEL_POLL_SECONDS="0", MEDCODE_LOG_LEVEL="WARNING")
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, child)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, child: subprocess.Popen[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(
                f"medcode serve exited ({child.returncode}): {(child.stderr.read() if child.stderr else '')[-2000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise SystemExit("medcode serve did not become healthy in time")


# -- load ----------------------------------------------------------------------------------------------


def _post(http: httpx.Client, note: str, encounter_id: str) -> float:
    payload = {
        "encounter_id": encounter_id,
        "patient": {"age": 60, "sex": "female"},
        "documents": [{"document_id": "d1", "type": "clinical_case", "text": note}],
    }
    started = time.perf_counter()
    response = http.post("/v1/suggest", json=payload)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"/v1/suggest answered {response.status_code}: {response.text[:300]}")
    return elapsed


def _run(
    base_url: str, headers: dict[str, str], notes: list[str], concurrency: int, total: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=300) as http:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                try:
                    elapsed = _post(http, notes[index % len(notes)], f"bench-{concurrency}-{index}")
                except Exception as exc:  # the report counts failures instead of dying on one
                    with lock:
                        errors.append(str(exc)[:200])
                    continue
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": total,
        "ok": len(latencies),
        "errors": len(errors),
        "p50_ms": round(_percentile(ordered, 50) * 1000, 1),
        "p95_ms": round(_percentile(ordered, 95) * 1000, 1),
        "p99_ms": round(_percentile(ordered, 99) * 1000, 1),
        "mean_ms": round(statistics.mean(ordered) * 1000, 1) if ordered else None,
        "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
        "wall_s": round(wall, 2),
    }


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _row(run: dict[str, Any]) -> str:
    return (
        f"| {run['concurrency']} | {run['ok']}/{run['requests']} | {run['p50_ms']} | {run['p95_ms']} | "
        f"{run['p99_ms']} | {run['throughput_rps']} |"
    )


def _append_notes(path: Path, report: dict[str, Any], argv: list[str]) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## {stamp}: `/v1/suggest`, model {report['model']}\n",
        f"Command: `python benchmarks/service.py {shlex.join(argv)}`  ",
        f"Server: {report['server']}, SQLite; machine: {report['machine']['cpus']} CPUs, "
        f"Python {report['machine']['python']}  ",
        f"Notes: {report['notes']['source']}, {report['notes']['count']} distinct, "
        f"mean {report['notes']['mean_chars']} characters\n",
        "| clients | ok/requests | p50 ms | p95 ms | p99 ms | requests/s |",
        "|---|---|---|---|---|---|",
        *(_row(run) for run in report["runs"]),
        "",
    ]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
