"""persisted operations: partner clients and their registered (trusted) documents

`operation_client` says whether a client (a token's `client` claim) is open or runs its
registered operations only; `persisted_operation` holds those documents by SHA-256.
Written by `sisada operations`, read by the gateway (gateway/persisted).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operation_client",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "persisted_operation",
        sa.Column("client", sa.String(63), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("operation_names", sa.Text(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("persisted_operation")
    op.drop_table("operation_client")
