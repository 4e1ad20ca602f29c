"""Run an app under a real uvicorn server in a background thread (benchmarks and concurrency tests)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI


@contextlib.contextmanager
def serve_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0
) -> Iterator[str]:
    """Start uvicorn on `host` (port 0: any free port), yield its base URL once the model has loaded, stop it
    on exit."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="medcode-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server thread stopped during startup")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the server did not start in time")
        time.sleep(0.02)
    while app.state.model.state == "loading":  # the app loads its model in the background: wait for it
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the model did not load in time")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
