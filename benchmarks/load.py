"""Load test of `medcode serve --workers N` on PostgreSQL on 127.0.0.1: a bounded asyncio/httpx client mix.

    python benchmarks/load.py --db postgresql+psycopg://postgres@127.0.0.1:5441/medcode_test \\
        [--workers 1 2] [--clients 32 128] [--duration 60] [--model builtin] [--notes-file benchmarks/scale.md]

For each worker count the script creates a fresh database on the given PostgreSQL server, one API key per
client, starts `medcode serve --workers N` as a child process (its own home `--home`, shared between runs
for the model caches), seeds the review queue, and then for each client count runs `--duration` seconds
of this mix (every client its own key and keep-alive connection):

- 3 clients in 4 are integrations: half of their requests `POST /v1/suggest`, half
  `POST /v1/encounters?route=review` (stored, suggested and queued for review);
- 1 in 4 is a coder: claim (`POST /v1/review/claim`; 204: wait 0.5 s), read the item, accept its first
  code, finalize with `accept_undecided` (release instead when finalize answers 409).

Notes are CodiEsp dev cases (`$MEDCODE_DATA_DIR/codiesp`) cycled, else synthetic notes of that size.
A 503 or 429 is retried after its Retry-After (counted separately, not as an error); any other answer
outside 2xx, a 409 other than a blocked finalize, and every transport failure or timeout is an error.
Double claims are counted twice: by the clients (an item granted while another client still holds it) and
from the server's audit trail afterwards (two claims of one item with no release or finalize between).
RSS per worker process is sampled from /proc every second (the peak is reported). The last line of stdout
is one JSON object; `--notes-file` appends a Markdown section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from service import _notes as source_notes  # benchmarks/service.py: the same notes
from service import notes_source

MEDCODE = Path(sys.executable).with_name("medcode")
CODER_EVERY = 4
"""Every fourth client is a coder; the others are integrations."""
SEED_ITEMS = 64
CLIENT_TIMEOUT_S = 300.0


@dataclass
class Tally:
    """What one run saw, filled by all its clients."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    retried: Counter[int] = field(default_factory=Counter)
    held: dict[int, int] = field(default_factory=dict)
    double_claims: int = 0
    claims: int = 0
    finalized: int = 0

    def ok(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


async def _request(
    http: httpx.AsyncClient, tally: Tally, kind: str, method: str, url: str, **kwargs: Any
) -> httpx.Response | None:
    """One request, retried after Retry-After on 503/429; None (an error counted) when it fails."""
    while True:
        start = time.perf_counter()
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            tally.errors[f"{kind}: {type(exc).__name__}"] += 1
            return None
        if response.status_code in (429, 503) and "Retry-After" in response.headers:
            tally.retried[response.status_code] += 1
            await asyncio.sleep(float(response.headers["Retry-After"]))
            continue
        tally.statuses[f"{kind} {response.status_code}"] += 1
        if response.is_success:
            tally.ok(kind, time.perf_counter() - start)
        return response


async def _integration(
    http: httpx.AsyncClient, tally: Tally, notes: list[str], until: float, rng: random.Random
) -> None:
    while time.monotonic() < until:
        text = rng.choice(notes)
        body = {
            "encounter_id": f"load-{uuid.uuid4().hex[:12]}",
            "patient": {"age": rng.randint(18, 90), "sex": rng.choice(["female", "male"])},
            "setting": "inpatient",
            "documents": [{"document_id": "d1", "type": "discharge_summary", "text": text}],
        }
        if rng.random() < 0.5:
            response = await _request(http, tally, "suggest", "POST", "/v1/suggest", json=body)
            expected = 200
        else:
            response = await _request(http, tally, "submit", "POST", "/v1/encounters?route=review", json=body)
            expected = 201
        if response is not None and response.status_code != expected:
            tally.errors[f"{response.status_code} {response.text[:120]}"] += 1


async def _coder(http: httpx.AsyncClient, tally: Tally, until: float, me: int) -> None:
    while time.monotonic() < until:
        claim = await _request(http, tally, "claim", "POST", "/v1/review/claim")
        if claim is None:
            continue
        if claim.status_code == 204:
            await asyncio.sleep(0.5)
            continue
        if claim.status_code != 200:
            tally.errors[f"claim {claim.status_code} {claim.text[:120]}"] += 1
            continue
        item = claim.json()["item_id"]
        tally.claims += 1
        if item in tally.held:
            tally.double_claims += 1
        tally.held[item] = me
        view = await _request(http, tally, "item", "GET", f"/v1/review/items/{item}")
        codes = view.json().get("codes", []) if view is not None and view.status_code == 200 else []
        if codes:
            decision = {"decisions": [{"code": codes[0]["code"], "action": "accept"}]}
            decided = await _request(
                http, tally, "decide", "POST", f"/v1/review/items/{item}/decisions", json=decision
            )
            if decided is not None and decided.status_code != 200:
                tally.errors[f"decide {decided.status_code} {decided.text[:120]}"] += 1
        tally.held.pop(item, None)  # before finalize/release: whoever gets it next finds it free here
        done = await _request(
            http,
            tally,
            "finalize",
            "POST",
            f"/v1/review/items/{item}/finalize",
            json={"accept_undecided": True},
        )
        if done is not None and done.status_code == 200:
            tally.finalized += 1
            continue
        if done is not None and done.status_code not in (409,):
            tally.errors[f"finalize {done.status_code} {done.text[:120]}"] += 1
        released = await _request(http, tally, "release", "POST", f"/v1/review/items/{item}/release")
        if released is not None and released.status_code != 200:
            tally.errors[f"release {released.status_code} {released.text[:120]}"] += 1


async def _run(url: str, keys: list[tuple[str, str]], notes: list[str], duration: float) -> Tally:
    tally = Tally()
    until = time.monotonic() + duration
    clients = []
    tasks = []
    for index, (role, key) in enumerate(keys):
        http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=CLIENT_TIMEOUT_S,
            limits=httpx.Limits(max_connections=1),
        )
        clients.append(http)
        if role == "coder":
            tasks.append(_coder(http, tally, until, index))
        else:
            tasks.append(_integration(http, tally, notes, until, random.Random(index)))
    try:
        await asyncio.gather(*tasks)
    finally:
        for http in clients:
            await http.aclose()
    return tally


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000  # noqa: E731
    return {"p50": round(pick(0.50), 1), "p95": round(pick(0.95), 1), "p99": round(pick(0.99), 1)}


# -- server, database, RSS ----------------------------------------------------------------------------


def _fresh_database(server_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"medcode_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _keys(db_url: str, n_clients: int) -> list[tuple[str, str]]:
    from medcode.serving.auth import SYSTEM_PRINCIPAL
    from medcode.serving.db import Database
    from medcode.serving.services import keys

    database = Database.connect(db_url)
    try:
        with database.sessions() as session:
            out = []
            for i in range(n_clients):
                role = "coder" if i % CODER_EVERY == CODER_EVERY - 1 else "integration"
                out.append((role, keys.create(session, SYSTEM_PRINCIPAL, role, f"load {i}").key))
            return out
    finally:
        database.dispose()


def _audit_double_claims(db_url: str) -> tuple[int, int]:
    """(claims, double claims) in the audit trail: a claim of an item whose last event was a claim."""
    from sqlalchemy import select

    from medcode.serving.db import Database
    from medcode.serving.orm import AuditEventRow

    database = Database.connect(db_url, run_migrations=False)
    try:
        with database.sessions() as session:
            rows = session.execute(
                select(AuditEventRow.entity_id, AuditEventRow.action)
                .where(AuditEventRow.action.in_(["review.claimed", "review.released", "review.finalized"]))
                .order_by(AuditEventRow.id)
            ).all()
    finally:
        database.dispose()
    last: dict[str, str] = {}
    claims = doubles = 0
    for item, action in rows:
        if action == "review.claimed":
            claims += 1
            doubles += last.get(item) == "review.claimed"
        last[item] = action
    return claims, doubles


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _worker_pids(server: int, workers: int) -> list[int]:
    """The processes that serve requests: `medcode serve --workers 1` serves in its own process, more
    workers are its children."""
    if workers == 1:
        return [server]
    return [pid for pid in _children(server) if b"resource_tracker" not in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Peak RSS of each worker process, sampled every second."""

    def __init__(self, parent: int, workers: int) -> None:
        self.parent = parent
        self.workers = workers
        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in _worker_pids(self.parent, self.workers):
                self.peak[pid] = max(self.peak.get(pid, 0.0), _rss_mb(pid))
            self._stop.wait(1.0)


@contextlib.contextmanager
def _serve(
    db_url: str, workers: int, model: str, home: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MEDCODE_HOME": str(home),
        "MEDCODE_AUTO_TRAIN": "off",
        "MEDCODE_MODEL_POLL_SECONDS": "0",
    }
    command = [str(MEDCODE), "serve", "--workers", str(workers), "--port", str(port), "--db", db_url]
    command += ["--model", model, "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"medcode serve exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"{url}/health", timeout=5).status_code == 200
                    and len(_worker_pids(process.pid, workers)) >= workers
                ):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("medcode serve did not become healthy")
            time.sleep(1)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _all_workers_ready(url: str, workers: int, timeout: float = 600) -> None:
    """Until /health over fresh connections has shown `workers` distinct model load times (every worker
    has loaded its model)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            body = httpx.get(f"{url}/health", timeout=10).json()
            if body.get("status") == "ok" and body.get("model_loaded_at"):
                seen.add(body["model_loaded_at"])
        time.sleep(0.1)


def _seed(url: str, key: str, notes: list[str], n: int) -> None:
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=CLIENT_TIMEOUT_S
    ) as http:
        for i in range(n):
            body = {
                "encounter_id": f"seed-{i}",
                "patient": {"age": 60, "sex": "female"},
                "documents": [{"document_id": "d1", "text": notes[i % len(notes)]}],
            }
            response = http.post("/v1/encounters?route=review", json=body)
            response.raise_for_status()


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    notes = source_notes(args.data_dir, args.max_notes)
    args.home.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for workers in args.workers:
        db_url = _fresh_database(args.db)
        keys = _keys(db_url, max(args.clients))
        seed_key = next(key for role, key in keys if role == "integration")
        with _serve(db_url, workers, args.model, args.home) as (url, process):
            _all_workers_ready(url, workers)
            _seed(url, seed_key, notes, args.seed_items)
            for clients in args.clients:
                load_before = _load_average()
                with RssSampler(process.pid, workers) as rss:
                    started = time.monotonic()
                    tally = asyncio.run(_run(url, keys[:clients], notes, args.duration))
                    wall = time.monotonic() - started
                claims, doubles = _audit_double_claims(db_url)
                all_latencies = [s for values in tally.latencies.values() for s in values]
                run = {
                    "workers": workers,
                    "clients": clients,
                    "wall_s": round(wall, 1),
                    "requests_ok": len(all_latencies),
                    "requests_per_s": round(len(all_latencies) / wall, 2),
                    **_percentiles(all_latencies),
                    "by_kind": {
                        kind: {"n": len(values), **_percentiles(values)}
                        for kind, values in sorted(tally.latencies.items())
                    },
                    "errors": sum(tally.errors.values()),
                    "error_kinds": dict(tally.errors.most_common(5)),
                    "retried_503": tally.retried[503],
                    "retried_429": tally.retried[429],
                    "claims": tally.claims,
                    "finalized": tally.finalized,
                    "double_claims_client": tally.double_claims,
                    "double_claims_audit": doubles,
                    "claims_audit_total": claims,
                    "rss_mb_per_worker": sorted(round(v) for v in rss.peak.values()),
                    "load_average_before": load_before,
                    "load_average_after": _load_average(),
                }
                runs.append(run)
                print(json.dumps(run), flush=True)
    report = {
        "model": args.model,
        "notes": notes_source(args.data_dir),
        "mean_chars": round(statistics.mean(len(n) for n in notes)),
        "duration_s": args.duration,
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "runs": runs,
    }
    if args.notes_file is not None:
        _append_markdown(args, report, argv)
    print(json.dumps(report))
    return 0


def _append_markdown(args: argparse.Namespace, report: dict[str, Any], argv: list[str] | None) -> None:
    command = "python benchmarks/load.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = [
        "",
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {report['duration_s']:g} s per run, model {report['model']}",
        "",
        f"Command: `{command}`  ",
        f"Notes: {report['notes']}, mean {report['mean_chars']} characters; machine: {report['machine']}",
        "",
        "| workers | clients | ok requests | req/s | p50 ms | p95 ms | p99 ms | errors | 503 retried |"
        " 429 retried | claims (finalized) | double claims | peak RSS per worker MB | load avg before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['workers']} | {run['clients']} | {run['requests_ok']} | {run['requests_per_s']} | "
            f"{run['p50']} | {run['p95']} | {run['p99']} | {run['errors']} | {run['retried_503']} | "
            f"{run['retried_429']} | {run['claims']} ({run['finalized']}) | "
            f"{run['double_claims_client']} / {run['double_claims_audit']} | "
            f"{', '.join(str(r) for r in run['rss_mb_per_worker'])} | "
            f"{run['load_average_before']} / {run['load_average_after']} |"
        )
    with args.notes_file.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", required=True, help="PostgreSQL server URL (a fresh database is made per run)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run (default 60)")
    parser.add_argument(
        "--model", default="builtin", help="model reference for medcode serve (default builtin)"
    )
    parser.add_argument("--home", type=Path, default=Path("/tmp/medcode-load-home"), help="MEDCODE_HOME")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="datasets folder (default MEDCODE_DATA_DIR)"
    )
    parser.add_argument("--max-notes", type=int, default=100)
    parser.add_argument(
        "--seed-items", type=int, default=SEED_ITEMS, help="review items queued before the runs"
    )
    parser.add_argument("--notes-file", type=Path, default=None, help="append a Markdown section here")
    return parser


if __name__ == "__main__":
    sys.exit(main())
