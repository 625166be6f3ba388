"""event outbox: live events written in the transaction of the change they announce

A relay reads committed rows in id order and publishes them (gateway/event_bus); a crash
between the commit and the publish loses nothing, the next poll finds the row. Subscribers
that reconnect with `after: <id>` are replayed from here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_outbox_topic_id", "event_outbox", ["topic", "id"])


def downgrade() -> None:
    op.drop_index("ix_event_outbox_topic_id", table_name="event_outbox")
    op.drop_table("event_outbox")
