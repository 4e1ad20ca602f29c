"""`medcode keys create|list|revoke` (`medcode serve` lives in medcode/commands/serve.py).

Imports stay light here: this module is loaded whenever `medcode` starts."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from medcode.data.errors import InvalidInputError
from medcode.serving.roles import ROLES

if TYPE_CHECKING:
    from medcode.settings import Settings

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
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


def serving_settings(args: argparse.Namespace) -> Settings:
    """The settings with the command line's --db and --model applied."""
    from medcode.settings import get_settings

    settings = get_settings()
    updates: dict[str, Any] = {}
    if getattr(args, "db", None):
        updates["database_url"] = args.db
    if getattr(args, "model", None):
        updates["model_ref"] = args.model
    return settings.model_copy(update=updates) if updates else settings


def _database(args: argparse.Namespace) -> Any:
    from medcode.serving.db import Database

    return open_database(Database.connect, serving_settings(args).resolved_database_url)


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
    from medcode.serving.auth import SYSTEM_PRINCIPAL
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
    from medcode.serving.auth import SYSTEM_PRINCIPAL
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
