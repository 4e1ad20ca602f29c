"""The per-key rate limit and the sign-in throttle kept in the database, so that every server process of a
`medcode serve --workers N` on PostgreSQL counts against the same budget (serving.limits). UNLOGGED on
PostgreSQL: no write-ahead log for these hot counters; a crash empties them, which only refills budgets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    prefixes = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        prefixes=prefixes,
    )
    op.create_table(
        "signin_failures",
        sa.Column("client", sa.String(100), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.Column("last_failed", sa.Float(), nullable=False),
        prefixes=prefixes,
    )
    op.create_index("ix_signin_failures_last_failed", "signin_failures", ["last_failed"])


def downgrade() -> None:
    op.drop_index("ix_signin_failures_last_failed", table_name="signin_failures")
    op.drop_table("signin_failures")
    op.drop_table("rate_buckets")
