"""`medcode batch INPUT --out DIR`: code many encounters into result files, locally or on Ray."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcode.data.errors import InvalidInputError
from medcode.data.types import Encounter
from medcode.settings import add_model_argument


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "batch",
        help="code many encounters (JSONL, Parquet, FHIR Bulk Data NDJSON) into result files",
        description=(
            "Code every encounter of INPUT — the project's JSONL (one encounter JSON per line), Parquet, or "
            "a FHIR Bulk Data export (NDJSON of Patient, Encounter and DocumentReference resources; a file "
            "or a folder) — and write DIR/part-NNNNN.jsonl, one /v1/suggest result per line. Encounters "
            "that cannot be coded go to DIR/errors.jsonl with the reason. Rerun the same command to resume: "
            "finished shards are skipped, nothing is written twice. Prints a JSON summary on stdout."
        ),
    )
    parser.add_argument(
        "input", metavar="INPUT", help="a .jsonl, .ndjson or .parquet file, or a folder of them"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the output folder")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process, one note at a time; ray: a pool of Ray actors (default local)",
    )
    parser.add_argument(
        "--address", default=None, help="join this Ray cluster (default: start a local one on 127.0.0.1)"
    )
    parser.add_argument(
        "--actors",
        type=_positive,
        default=None,
        help="Ray actors, one CPU and one model each (default: one per CPU)",
    )
    parser.add_argument(
        "--batch-size", type=_positive, default=8, help="encounters per Ray actor call (default 8)"
    )
    parser.add_argument(
        "--shard-size",
        type=_positive,
        default=1000,
        help="encounters per output file; a resumed run must keep it (default 1000)",
    )
    add_model_argument(parser)
    parser.add_argument("--parquet", action="store_true", help="also write DIR/part-NNNNN.parquet")
    parser.add_argument(
        "--submit-db",
        default=None,
        metavar="URL",
        help="also submit every result to the review queue of this database (as POST /v1/encounters does)",
    )
    parser.set_defaults(func=run_batch_command)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def run_batch_command(args: argparse.Namespace) -> int:
    from medcode.batch.engines import RayOptions
    from medcode.batch.inputs import open_input
    from medcode.batch.runner import BatchOptions, run_batch
    from medcode.serving.services.encounters import EncounterLimits
    from medcode.settings import get_settings

    if args.engine == "local" and (args.address or args.actors):
        raise InvalidInputError("--address and --actors go with --engine ray")
    settings = get_settings()
    source = open_input(Path(args.input))
    options = BatchOptions(
        engine=args.engine,
        model_ref=args.model or settings.model_ref,
        shard_size=args.shard_size,
        parquet=args.parquet,
        ray=RayOptions(address=args.address, actors=args.actors, batch_size=args.batch_size),
    )
    limits = EncounterLimits(
        max_note_chars=settings.max_note_chars,
        max_documents=settings.max_documents,
        max_encounter_chars=settings.max_encounter_chars,
    )
    database = _open_database(args.submit_db) if args.submit_db else None
    try:
        summary = run_batch(
            source,
            args.out,
            options,
            registry=settings.registry,
            limits=limits,
            submit=_review_queue(database) if database is not None else None,
            progress=sys.stderr.isatty(),
        )
    except KeyboardInterrupt:
        print(
            "medcode batch: stopped; finished shards are kept, rerun the same command to resume",
            file=sys.stderr,
        )
        raise
    finally:
        if database is not None:
            database.dispose()
    print(json.dumps({**summary.to_json(), "out": str(args.out)}))
    return 0


def _open_database(url: str) -> Any:
    from medcode.serving.cli import open_database
    from medcode.serving.db import Database

    return open_database(Database.connect, url)


def _review_queue(database: Any) -> Any:
    """Submit results as `POST /v1/encounters` does: stored, routed, and queued for review unless
    auto-accepted. Resubmitting an unchanged encounter stores nothing, so a resumed shard is harmless."""
    from medcode.data.types import Result
    from medcode.serving.auth import SYSTEM_PRINCIPAL
    from medcode.serving.services.encounters import submit_encounter

    def submit(pairs: Sequence[tuple[Encounter, dict[str, Any]]]) -> None:
        with database.sessions() as session:
            for encounter, result in pairs:
                submit_encounter(
                    session,
                    SYSTEM_PRINCIPAL,
                    encounter,
                    Result.model_validate(result),
                    now=datetime.now(UTC),
                )

    return submit
