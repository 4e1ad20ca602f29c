"""Database engine, sessions and migrations (SQLite with WAL by default, PostgreSQL supported).

On SQLite every transaction starts with `BEGIN IMMEDIATE`: the write lock is taken up front, so two
requests never both read a row and then race to update it (WAL keeps plain reads of other connections
unblocked), and a busy database waits `busy_timeout` instead of failing. Service functions keep their
transactions short: the model runs before the write transaction opens.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVarTuple

from sqlalchemy import Engine, Row, Select, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
_Ts = TypeVarTuple("_Ts")
_PACKAGE_DIR = Path(__file__).resolve().parent


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, immediate: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout, foreign keys and `BEGIN IMMEDIATE`
    (`immediate=False`: a plain deferred BEGIN, for read-only work that must not queue behind writers)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}, pool_size=10
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver stops managing transactions; we do
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def page(
    session: Session, query: Select[*_Ts], *order_by: Any, limit: int, offset: int
) -> tuple[int, Sequence[Row[*_Ts]]]:
    """One page of a list endpoint: the count of all rows the query matches, and the rows of the page."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(*order_by).limit(limit).offset(offset)).all()
    return total, rows


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (runs at startup and before CLI key commands)."""
    from alembic import command
    from alembic.config import Config

    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)  # its INFO lines say nothing an operator needs on every start
    config = Config(str(_PACKAGE_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(_PACKAGE_DIR / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def scratch_postgres_database(server_url: str, prefix: str = "medcode") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `server_url` (its URL yielded), dropped afterwards
    (for tests and benchmarks that must not touch a real database)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass
class Database:
    """The engine and the session factory of one app (or one CLI command)."""

    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    """For short read-only look-ups (API key checks): on SQLite they never wait for the write lock."""

    @classmethod
    def connect(cls, url: str, *, run_migrations: bool = True) -> Database:
        engine = make_engine(url)
        if run_migrations:
            migrate(engine)
        reader = make_engine(url, immediate=False) if is_sqlite(url) else engine
        return cls(
            engine=engine,
            sessions=sessionmaker(engine, expire_on_commit=False),
            read_sessions=sessionmaker(reader, expire_on_commit=False),
        )

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # the health endpoint reports it; the reason goes to the log
            logger.warning("database ping failed", exc_info=True)
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        reader = self.read_sessions.kw.get("bind")
        if reader is not None and reader is not self.engine:
            reader.dispose()
