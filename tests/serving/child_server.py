"""The service in a child process, for the tests that kill or stop a real server: uvicorn on 127.0.0.1 around
the tests' fake coder, on the database the test names.

    python -m tests.serving.child_server --db URL --port PORT --home DIR [--lease-seconds S]

`ChildServer.start(...)` runs it and waits until `/health` answers 200; `kill()` is kill -9. The text
pipeline that finalizing uses is loaded before the server listens (from the disk cache under the home
folder after the first time: share one home between starts).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until `url/health` answers 200; fails when the process ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} during startup")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server at {url} was not healthy within {timeout:g} s")


@dataclass
class ChildServer:
    process: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(cls, db_url: str, home: Path, *, lease_seconds: int = 900, timeout: float = 300) -> ChildServer:
        port = free_port()
        command = [sys.executable, "-m", "tests.serving.child_server", "--db", db_url, "--port", str(port)]
        command += ["--home", str(home), "--lease-seconds", str(lease_seconds)]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "MEDCODE_HOME": str(home)})
        server = cls(process, f"http://127.0.0.1:{port}")
        try:
            wait_healthy(server.url, process, timeout)
        except BaseException:
            server.kill()
            raise
        return server

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no goodbye."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--lease-seconds", type=int, default=900)
    args = parser.parse_args(argv)

    import uvicorn

    from medcode.serving.app import create_app
    from tests.fakes import FakeCoder
    from tests.serving.conftest import make_settings

    settings = make_settings(args.db, home=Path(args.home), review_lease_seconds=args.lease_seconds)
    app = create_app(settings, coder=FakeCoder())
    # Finalizing checks the note with the text pipeline: load it once now, not in every coder's first
    # finalize at the same time.
    from medcode.data.types import Document, Encounter
    from medcode.serving.services.review_checks import note_mentions

    note_mentions(
        Encounter(encounter_id="warm-up", documents=[Document(document_id="d1", text="Chest pain.")])
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
