"""Fuzz the service's OpenAPI schema with schemathesis, in-process, with an API key for every role.

    nice python -m benchmarks.fuzz [--examples 80] [--seed 1] [--postgres URL] [--out FILE]

Every operation of `/openapi.json` gets `--examples` generated cases per generation mode (positive: fits
the schema; negative: does not), each sent once with the key of each role (coder, integration, scientist,
admin; a negative case may also drop or garble the key), so a database sees about
operations x 2 x 4 x examples requests, against a
fresh SQLite database and, with `--postgres` (or `MEDCODE_TEST_POSTGRES_URL`), a fresh PostgreSQL
database. The app runs around the tests' fake coder (tests/fakes.py), so the model is never the
bottleneck. Any 5xx answer is a finding: the report lists each (status, operation, role, mode, a curl
line to reproduce it). The last line of stdout is one JSON object:
`{"databases": {"sqlite": {"cases": N, "server_errors": N, "seconds": S}, ...}}`; the exit status is 1 when
any 5xx was found.

The CI stage is tests/serving/test_fuzz.py: the same `fuzz()` with a few examples and a fixed seed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi

from medcode.serving.app import create_app
from medcode.serving.auth import ROLES, SYSTEM_PRINCIPAL
from medcode.serving.db import scratch_postgres_database
from medcode.serving.services import keys as key_service
from medcode.settings import Settings
from tests.fakes import FakeCoder

MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
REQUEST_TIMEOUT_SECONDS = 120.0
"""A request that takes longer is a failure of the run (the fake coder answers in milliseconds)."""


@dataclass(frozen=True)
class Finding:
    """One 5xx answer."""

    status: int
    operation: str
    role: str
    mode: str
    curl: str


@dataclass
class FuzzReport:
    cases: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "server_errors": len(self.findings),
            "seconds": round(self.seconds, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


def fuzz_settings(database_url: str, home: str | None = None) -> Settings:
    """The service's settings for a fuzz run: no rate limit or sign-in lockout (one client sends
    thousands of requests, many of them refused) and a short suggestion budget."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "model_ref": "fake",
        "model_poll_seconds": 0,
        "rate_limit_per_minute": 0,
        "signin_max_failures": 1_000_000,
    }
    if home is not None:
        values["home"] = home
    return Settings(**values)


def fuzz_app(settings: Settings) -> tuple[FastAPI, dict[str, str]]:
    """The app around a fake coder (a reload gets the same fake back) and one raw API key per role."""
    coder = FakeCoder()
    app = create_app(settings, coder=coder, loader=lambda _ref: coder)
    with app.state.db.sessions() as session:
        keys = {
            role: key_service.create(session, SYSTEM_PRINCIPAL, role, f"fuzz {role}").key for role in ROLES
        }
    return app, keys


def fuzz(
    app: FastAPI,
    keys: dict[str, str],
    *,
    examples: int,
    seed: int | None = None,
    modes: Sequence[GenerationMode] = MODES,
    progress: bool = False,
) -> FuzzReport:
    """Send `examples` generated cases per operation and mode, each with every key; record every status and
    each 5xx.

    `seed=None` derandomizes (the same cases on every run, as CI wants)."""
    report = FuzzReport()
    started = time.perf_counter()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    try:
        _warm_up(app, keys)
        for operation in operations:
            for mode in modes:
                before = report.cases
                _fuzz_operation(operation, mode, headers, examples, seed, report)
                if progress:
                    print(
                        f"{mode.value:<8} {operation.label:<50} {report.cases - before:>6} requests,"
                        f" {len(report.findings)} 5xx so far",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        asgi.shutdown_lifespans()
    report.seconds = time.perf_counter() - started
    return report


def _warm_up(app: FastAPI, keys: dict[str, str]) -> None:
    """Build the code search index once (seconds on a first start) before any case is timed."""
    with asgi.get_client(app) as client:
        client.get("/v1/codes", params={"q": "fever"}, headers={"Authorization": f"Bearer {keys['coder']}"})


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, dict[str, str]],
    examples: int,
    seed: int | None,
    report: FuzzReport,
) -> None:
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except (
        Exception
    ):  # an operation with nothing to make invalid (no parameters, no body) has no negative cases
        return

    @hypothesis.settings(
        max_examples=examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        for role, auth in headers.items():
            response = case.call(headers=dict(auth), timeout=REQUEST_TIMEOUT_SECONDS)
            report.cases += 1
            report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                curl = case.as_curl_command({"Authorization": f"Bearer <{role} key>"})
                report.findings.append(Finding(response.status_code, operation.label, role, mode.value, curl))

    if seed is not None:
        run = hypothesis.seed(seed)(run)
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()


@contextlib.contextmanager
def _database(kind: str, postgres_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="medcode-fuzz-") as folder:
            yield f"sqlite:///{folder}/medcode.db"
        return
    assert postgres_url is not None
    with scratch_postgres_database(postgres_url, prefix="medcode_fuzz") as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=80, help="generated cases per operation and mode (default 80)"
    )
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed (default 1)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("MEDCODE_TEST_POSTGRES_URL"),
        help="a PostgreSQL server to create a fresh database on (default: MEDCODE_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="fuzz one database only")
    parser.add_argument("--out", metavar="FILE", help="write the findings as JSON lines here")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    logging.basicConfig(level=logging.CRITICAL)  # the app logs every refused request; keep the output short
    kinds = [k for k in ("sqlite", "postgres") if args.only in (None, k)]
    if "postgres" in kinds and not args.postgres:
        if args.only == "postgres":
            parser.error("--only postgres needs --postgres URL or MEDCODE_TEST_POSTGRES_URL")
        kinds.remove("postgres")
    summary: dict[str, Any] = {}
    findings: list[dict[str, Any]] = []
    for kind in kinds:
        with (
            tempfile.TemporaryDirectory(prefix="medcode-fuzz-home-") as home,
            _database(kind, args.postgres) as url,
        ):
            app, keys = fuzz_app(fuzz_settings(url, home))
            try:
                report = fuzz(app, keys, examples=args.examples, seed=args.seed, progress=True)
            finally:
                app.state.db.dispose()
        summary[kind] = report.summary()
        findings.extend({"database": kind, **vars(finding)} for finding in report.findings)
        print(f"{kind}: {json.dumps(summary[kind])}", file=sys.stderr)
        for finding in report.findings:
            print(f"  {finding.status} {finding.operation} ({finding.role}, {finding.mode}): {finding.curl}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            for finding in findings:
                out.write(json.dumps(finding) + "\n")
    print(json.dumps({"examples": args.examples, "seed": args.seed, "databases": summary}))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
