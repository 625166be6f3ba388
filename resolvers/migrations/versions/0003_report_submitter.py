"""report submitter: issuer and role beside the subject

"Own submitted" reports matched on the token's subject alone, so two principals with one
subject (another issuer, or the same person in another role) shared their reports. A
report now records the submitter's issuer and role too. Reports submitted before carry
neither and so belong to nobody: no principal matches them (fail closed).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitter_issuer", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("submitter_role", sa.String(length=64), nullable=True))
        batch_op.alter_column("submitted_by", existing_type=sa.String(length=120),
                              type_=sa.String(length=255), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.alter_column("submitted_by", existing_type=sa.String(length=255),
                              type_=sa.String(length=120), existing_nullable=True)
        batch_op.drop_column("submitter_role")
        batch_op.drop_column("submitter_issuer")
