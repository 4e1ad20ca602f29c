"""The largest note `POST /v1/suggest` answers within its latency target (p95 300 ms at one client).

    python -m benchmarks.note_size [--model REF] [--sizes 500 1000 2000 ...] [--requests 40] [--target-ms 300]
        [--notes-file benchmarks/service.md]

The server is `medcode serve` in a child process on a fresh SQLite database (benchmarks/service.py's
server). For each size, notes of exactly that many characters are cut from CodiEsp dev clinical cases
joined end to end and cut (`--data-dir`, default `$MEDCODE_DATA_DIR/codiesp`; else from
benchmarks/service.py's synthetic notes), each request a different note, one client, after a few
unmeasured warm-up requests. Sizes grow until p95 is over twice the target. The report gives p50/p95 per
size and the largest size whose p95 meets the target; the last line of stdout is one JSON object and
`--notes-file` appends a dated Markdown section.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.service import (
    _child_server,
    _codiesp_dir,
    _create_key,
    _notes,
    _percentile,
    _post,
    machine,
    publish,
)

DEFAULT_SIZES = [500, 1_000, 2_000, 3_000, 4_000, 6_000, 8_000, 12_000, 16_000, 24_000, 32_000]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    source = _notes(args.data_dir)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="medcode-note-size-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        key = _create_key(db_url)
        with (
            _child_server(args.model, db_url) as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as http,
        ):
            model = http.get("/health").json().get("model_version")
            for i in range(args.warmup):
                _post(http, _note(source, 2_000, i), f"warm-{i}")
            for size in sorted(args.sizes):
                times = sorted(
                    1000 * _post(http, _note(source, size, i), f"n{size}-{i}") for i in range(args.requests)
                )
                row = {
                    "chars": size,
                    "requests": len(times),
                    "p50_ms": round(_percentile(times, 50), 1),
                    "p95_ms": round(_percentile(times, 95), 1),
                    "max_ms": round(times[-1], 1),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if row["p95_ms"] > 2 * args.target_ms:
                    break
    meeting = [r["chars"] for r in rows if r["p95_ms"] <= args.target_ms]
    report = {
        "benchmark": "note_size",
        "model": model,
        "model_ref": args.model,
        "target_p95_ms": args.target_ms,
        "largest_meeting_target": max(meeting) if meeting else None,
        "source": "CodiEsp dev" if _codiesp_dir(args.data_dir) else "synthetic",
        "machine": machine(),
        "sizes": rows,
    }
    return publish(report, args.notes_file, _append_notes, argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.note_size",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="builtin", help="model reference for the server (default builtin)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=DEFAULT_SIZES, help="note sizes in characters"
    )
    parser.add_argument("--requests", type=int, default=40, help="measured requests per size (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests first (default 5)")
    parser.add_argument("--target-ms", type=float, default=300.0, help="p95 target in ms (default 300)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="CodiEsp folder (default $MEDCODE_DATA_DIR/codiesp)"
    )
    parser.add_argument("--notes-file", help="append a dated Markdown section to this file")
    return parser


def _note(source: list[str], size: int, index: int) -> str:
    """Exactly `size` characters of clinical text: consecutive notes from the `index`-th on, joined."""
    parts: list[str] = []
    total, i = 0, index * 7
    while total < size:
        parts.append(source[i % len(source)])
        total += len(parts[-1]) + 2
        i += 1
    return "\n\n".join(parts)[:size]


def _append_notes(path: Path, report: dict[str, Any], argv: list[str]) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    largest = report["largest_meeting_target"]
    lines = [
        "",
        f"## {when}: largest note within p95 {report['target_p95_ms']:g} ms, model {report['model']}",
        "",
        f"Command: `python -m benchmarks.note_size {' '.join(argv)}`  ",
        f"Server: medcode serve (child process), SQLite, one client; notes: {report['source']}, cut to size;"
        f" machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}",
        "",
        "| note characters | requests | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
        *(
            f"| {r['chars']:,} | {r['requests']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} |"
            for r in report["sizes"]
        ),
        "",
        f"Largest size meeting the target: **{f'{largest:,} characters' if largest else 'none tested'}**.",
    ]
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
