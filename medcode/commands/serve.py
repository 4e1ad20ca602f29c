"""`medcode serve`: the API and the coder UI, and on a first start the background training of the default model.

Serving imports only data and model, so the first-run training job (medcode.first_run) is started here, in
the composition layer, beside the server; the app reads the job's status file for /health and the UI.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from typing import Any

from medcode.settings import add_model_argument

logger = logging.getLogger(__name__)

WORKER_HEALTHCHECK_SECONDS = 120
"""How long uvicorn's supervisor waits for a worker's answer to its ping before it kills and restarts the
worker (uvicorn's default, 5 s, is shorter than a model load on a busy machine, where a worker that holds
the GIL in a long C call answers late: every worker was killed mid-load and restarted, again and again)."""


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the API and the coder UI",
        description=(
            "Run the medcode API (OpenAPI at /docs) and the coder UI (/ui) with uvicorn. With no champion "
            "model registered and CodiEsp under MEDCODE_DATA_DIR, the default model trains in the background "
            "and the service switches to it when it is promoted (MEDCODE_AUTO_TRAIN=off: never)."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--db", metavar="URL", help="database URL (default: MEDCODE_DATABASE_URL or SQLite)")
    add_model_argument(serve)
    serve.add_argument("--log-level", default=None, help="log level (default: MEDCODE_LOG_LEVEL or INFO)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own copy of the model (default 1; >1 suits PostgreSQL)",
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from medcode.first_run import FirstRun
    from medcode.serving.cli import open_database, serving_settings
    from medcode.serving.db import Database
    from medcode.serving.services import keys

    settings = serving_settings(args)
    level = (args.log_level or settings.log_level).upper()
    logging.getLogger().setLevel(level)
    for name in ("serving", "medcode"):
        logging.getLogger(name).setLevel(level)
    database = open_database(Database.connect, settings.resolved_database_url)
    with database.sessions() as session:
        has_keys = bool(keys.all_keys(session))
    database.dispose()
    if not has_keys:
        print("no API keys yet: create one with `medcode keys create --role admin`", file=sys.stderr)
    print(f"medcode serving on http://{args.host}:{args.port} (docs at /docs)", file=sys.stderr)
    first_run = FirstRun(settings)
    first_run.start()
    # uvicorn re-raises SIGTERM after its graceful shutdown: exit through `finally` so the job stops with us.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if args.workers > 1:
            # Worker processes build the app themselves from the environment: pass the overrides on.
            os.environ["MEDCODE_DATABASE_URL"] = settings.resolved_database_url
            os.environ["MEDCODE_MODEL"] = settings.model_ref
            uvicorn.run(
                "medcode.serving.app:create_app",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                log_level=level.lower(),
                access_log=False,
                timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            )
            return 0
        from medcode.serving.app import create_app

        app = create_app(settings)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=level.lower(),
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        )
        return 0
    finally:
        first_run.stop()
        # Exit without one more garbage collection over the model's millions of objects (seconds).
        gc.freeze()
