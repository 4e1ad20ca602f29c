"""The model generation: a counter that an admin model reload bumps, so that every server process of a
`medcode serve --workers N` on PostgreSQL reloads its model once (serving.model_generation), not only the
process that answered the reload.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from medcode.serving.orm import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_generation",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("model_generation")
