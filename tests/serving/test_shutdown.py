"""`medcode serve` stops within seconds of SIGTERM, even in the middle of a long suggestion: in-flight
requests get MEDCODE_SHUTDOWN_GRACE_SECONDS to finish, then they are cancelled, their model work is told to
stop, the request answers 503, and neither a worker thread nor a last garbage collection over the
model holds the process up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from medcode.serving.auth import SYSTEM_PRINCIPAL
from medcode.serving.db import Database
from medcode.serving.services import keys as key_service

from .child_server import free_port, wait_healthy
from .conftest import bearer
from .fakes import encounter_json

GRACE_SECONDS = 2
SLOW_NOTE = "The patient has type 2 diabetes and hypertension; she denies chest pain. " * 1_500
"""About 110,000 characters: tens of seconds of work for the built-in model."""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_during_a_slow_suggestion_stops_the_server_within_seconds(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'medcode.db'}"
    database = Database.connect(db_url)
    with database.sessions() as session:
        key = key_service.create(session, SYSTEM_PRINCIPAL, "integration", "shutdown test").key
    database.dispose()
    home = Path(os.environ.get("MEDCODE_HOME") or tmp_path / "home")  # the text lexicon's disk cache
    env = {
        **os.environ,
        "MEDCODE_HOME": str(home),
        "MEDCODE_AUTO_TRAIN": "off",
        "MEDCODE_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "MEDCODE_SUGGEST_TIMEOUT_SECONDS": "600",
    }
    port = free_port()
    medcode = shutil.which("medcode", path=str(Path(sys.executable).parent)) or "medcode"
    command = [
        medcode,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        db_url,
        "--model",
        "builtin",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    outcome: dict[str, object] = {}
    try:
        wait_healthy(url, process, timeout=400)  # /health is 200 once the built-in model has loaded

        def slow_request() -> None:
            try:
                response = httpx.post(
                    f"{url}/v1/suggest",
                    json=encounter_json("e1", SLOW_NOTE),
                    headers=bearer(key),
                    timeout=300,
                )
                outcome["status"] = response.status_code
            except httpx.TransportError as exc:
                outcome["error"] = type(exc).__name__

        client = threading.Thread(target=slow_request)
        client.start()
        time.sleep(2)  # the suggestion is under way
        assert client.is_alive(), f"the suggestion was not slow enough to test anything: {outcome}"
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.wait(timeout=60)
        took = time.monotonic() - signalled
        client.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert took < GRACE_SECONDS + 3, f"the server took {took:.1f} s to stop after SIGTERM"
    assert outcome == {"status": 503}, "the cut-short request answers 503 (shutting down), never 500"
