"""`medcode serve` and `medcode keys create|list|revoke`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from medcode.data.errors import InvalidInputError
from medcode.serving.auth import ROLES, SYSTEM_PRINCIPAL
from medcode.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the API and the coder UI",
        description="Run the medcode API (OpenAPI at /docs) and the coder UI (/ui) with uvicorn.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_db_option(serve)
    serve.add_argument(
        "--model",
        metavar="REF",
        help="model: champion (default), builtin, models:/NAME@alias or a pack folder",
    )
    serve.add_argument("--log-level", default=None, help="log level (default: MEDCODE_LOG_LEVEL or INFO)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own copy of the model (default 1; >1 suits PostgreSQL)",
    )
    serve.set_defaults(func=_serve)

    keys = subparsers.add_parser(
        "keys", help="manage API keys", description="Create, list and revoke API keys (stored hashed)."
    )
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = actions.add_parser(
        "create", help="create a key and print it once", description="Create an API key; it is printed once."
    )
    create.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    create.add_argument("--name", help="a label: who or what uses the key")
    create.set_defaults(func=_keys_create)
    _add_db_option(create)
    listing = actions.add_parser(
        "list", help="list keys (ids, names, roles; never the keys)", description="List keys."
    )
    listing.set_defaults(func=_keys_list)
    _add_db_option(listing)
    revoke = actions.add_parser("revoke", help="revoke a key by its id", description="Revoke an API key.")
    revoke.add_argument("key_id", help="the key's id, as `medcode keys list` shows it")
    revoke.set_defaults(func=_keys_revoke)
    _add_db_option(revoke)
    keys.set_defaults(func=lambda args: _missing_action(keys))


def _add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="database URL (default: MEDCODE_DATABASE_URL or SQLite)")


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _settings(args: argparse.Namespace) -> Settings:
    settings = get_settings()
    updates: dict[str, Any] = {}
    if getattr(args, "db", None):
        updates["database_url"] = args.db
    if getattr(args, "model", None):
        updates["model_ref"] = args.model
    return settings.model_copy(update=updates) if updates else settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from medcode.serving.app import create_app

    settings = _settings(args)
    level = (args.log_level or settings.log_level).upper()
    logging.getLogger().setLevel(level)
    logging.getLogger("serving").setLevel(level)
    from medcode.serving.db import Database
    from medcode.serving.services import keys

    database = open_database(Database.connect, settings.resolved_database_url)
    with database.sessions() as session:
        has_keys = bool(keys.all_keys(session))
    database.dispose()
    if not has_keys:
        print("no API keys yet: create one with `medcode keys create --role admin`", file=sys.stderr)
    print(f"medcode serving on http://{args.host}:{args.port} (docs at /docs)", file=sys.stderr)
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
            log_level=level.lower(),
            access_log=False,
        )
        return 0
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level=level.lower(), access_log=False)
    return 0


def _database(args: argparse.Namespace) -> Any:
    from medcode.serving.db import Database

    return open_database(Database.connect, _settings(args).resolved_database_url)


def open_database(connect: Any, url: str) -> Any:
    """Connect (and migrate), turning a bad URL or an unreachable server into one clear error line."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        return connect(url)
    except (ArgumentError, OperationalError) as exc:
        raise InvalidInputError(
            f"cannot open the database ({type(exc).__name__}); check --db or MEDCODE_DATABASE_URL"
        ) from None


def _keys_create(args: argparse.Namespace) -> int:
    from medcode.serving.services import keys

    database = _database(args)
    try:
        with database.sessions() as session:
            created = keys.create(session, SYSTEM_PRINCIPAL, args.role, args.name)
    finally:
        database.dispose()
    print(created.key)
    print(
        f"created {created.role} key {created.key_id} ({created.name}); store it now, it is not shown again",
        file=sys.stderr,
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from medcode.serving.services import keys

    database = _database(args)
    try:
        with database.sessions() as session:
            rows = keys.all_keys(session)
    finally:
        database.dispose()
    print(f"{'KEY_ID':<14} {'ROLE':<12} {'CREATED':<20} {'REVOKED':<20} NAME")
    for row in rows:
        revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if row.revoked_at else "-"
        created = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{row.key_id:<14} {row.role:<12} {created:<20} {revoked:<20} {row.name}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from medcode.serving.errors import NotFound
    from medcode.serving.services import keys

    database = _database(args)
    try:
        with database.sessions() as session:
            info = keys.revoke(session, SYSTEM_PRINCIPAL, args.key_id)
    except NotFound as exc:
        raise InvalidInputError(exc.message) from None
    finally:
        database.dispose()
    print(f"revoked {info.key_id} ({info.role}, {info.name})", file=sys.stderr)
    return 0
