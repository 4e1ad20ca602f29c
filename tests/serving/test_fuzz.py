"""The CI fuzz stage: schemathesis over the OpenAPI schema, in-process, with a key for every role, on SQLite
and PostgreSQL; any 5xx fails. A few derandomized cases per operation keep it under a minute a database;
`python -m benchmarks.fuzz` is the same run at 10,000+ requests a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fuzz import fuzz, fuzz_app, fuzz_settings
from medcode.serving.auth import ROLES

EXAMPLES = 4
"""Generated cases per operation and generation mode, each sent with every role's key."""


@pytest.mark.timeout(240)
def test_fuzzed_requests_never_answer_5xx(db_url: str, tmp_path: Path) -> None:
    app, keys = fuzz_app(fuzz_settings(db_url, str(tmp_path / "home")))
    try:
        report = fuzz(app, keys, examples=EXAMPLES)
    finally:
        app.state.db.dispose()

    found = "\n".join(f"{f.status} {f.operation} as {f.role} ({f.mode}): {f.curl}" for f in report.findings)
    assert not report.findings, f"{len(report.findings)} answers were 5xx:\n{found}"
    operations = len(app.openapi()["paths"])
    assert report.cases >= operations * len(ROLES) * EXAMPLES  # every operation was reached with every key
    # the keys worked (2xx), roles were told apart (403) and bad input was refused (422)
    assert {200, 403, 422} <= set(report.statuses), report.statuses
