"""officer office area

Officer ids are per office: an officer row now names the area its office serves,
so officers (and their activities) can be scoped to the office.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:05:42.066243
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("officer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("office_area_code", sa.String(length=32), nullable=True))
    # Existing officers serve the office this database belongs to: its city.
    op.execute(
        "UPDATE officer SET office_area_code = "
        "(SELECT code FROM area WHERE level = 'city' ORDER BY code LIMIT 1)"
    )
    with op.batch_alter_table("officer", schema=None) as batch_op:
        batch_op.alter_column("office_area_code", existing_type=sa.String(length=32),
                              nullable=False)
        batch_op.create_index(
            batch_op.f("ix_officer_office_area_code"), ["office_area_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("officer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_officer_office_area_code"))
        batch_op.drop_column("office_area_code")
