"""The model generation shared by every server process: an admin reload reaches all workers.

`POST /v1/admin/model/reload` bumps the counter (`request_reload`) before the answering process reloads;
every process reads it (`current_generation`) on its model poll and reloads once when it differs from the
generation it loaded (serving.holder). On PostgreSQL that is how `medcode serve --workers N` reloads every
worker, whatever the model reference (a pack folder too); SQLite runs one process.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from medcode.serving.db import Database
from medcode.serving.orm import ModelGenerationRow, utcnow

ROW = "model"


def current_generation(database: Database) -> int:
    """The generation asked for so far (0 before the first admin reload)."""
    with database.read_sessions() as session:
        value = session.scalar(select(ModelGenerationRow.generation).where(ModelGenerationRow.name == ROW))
    return int(value) if value is not None else 0


def request_reload(database: Database, requested_by: str | None) -> int:
    """Bump the generation (atomically: concurrent requests each get their own number); the new value."""
    for _ in range(3):
        with database.sessions() as session:
            bumped = session.execute(
                update(ModelGenerationRow)
                .where(ModelGenerationRow.name == ROW)
                .values(
                    generation=ModelGenerationRow.generation + 1,
                    requested_at=utcnow(),
                    requested_by=requested_by,
                )
                .returning(ModelGenerationRow.generation)
            ).scalar()
            if bumped is not None:
                session.commit()
                return int(bumped)
            session.add(
                ModelGenerationRow(name=ROW, generation=1, requested_at=utcnow(), requested_by=requested_by)
            )
            try:
                session.commit()
            except IntegrityError:  # another process inserted the row first: bump theirs
                session.rollback()
                continue
            return 1
    raise RuntimeError("could not record the model reload request")
