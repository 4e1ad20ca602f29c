"""UI sessions kept server-side (revoked at sign-out and with their key), and the key that submitted each
encounter (an integration sees only its own encounters).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from medcode.serving.orm import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.key_id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_ui_sessions_key_id", "ui_sessions", ["key_id"])
    with op.batch_alter_table("encounters") as batch:
        batch.add_column(sa.Column("owner", sa.String(32), nullable=True))
        batch.create_index("ix_encounters_owner", ["owner"])
    # encounters stored before owners were kept belong to the key of their first revision
    op.execute(
        "UPDATE encounters SET owner = (SELECT r.created_by FROM encounter_revisions r "
        "WHERE r.encounter_pk = encounters.id ORDER BY r.revision LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("encounters") as batch:
        batch.drop_index("ix_encounters_owner")
        batch.drop_column("owner")
    op.drop_index("ix_ui_sessions_key_id", table_name="ui_sessions")
    op.drop_table("ui_sessions")
