"""identity leaves the office database for the central registry

The registry is the system of record for identity (SPEC: "holds no identity at all"): the
office keeps the supervision record keyed by the registry's ids. This drops every identity
column — a foreigner's name, passport number, birth date and photo; a permit's document
number and sponsor name — and keeps what the age band needs as a year: `age_base_year`,
the year of the first 1 January on which the person was 0 (the age on 1 January of year Y
is Y - age_base_year), which dates no one's birth more precisely than the band it feeds.

Rows that still hold identity are refused unless `sisada migrate` has first copied them
into the registry (resolvers.migrate.identity_rows; the attribute `identity_moved`): a
migration never silently destroys the only copy of someone's identity.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


class IdentityNotMovedError(RuntimeError):
    """The office still holds identity that nobody copied to the registry."""


def upgrade() -> None:
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT count(*) FROM foreigner")).scalar_one()
    if held and not context.config.attributes.get("identity_moved"):
        raise IdentityNotMovedError(
            f"{held} foreigners still carry identity: run `sisada migrate`, which copies it "
            "to the registry (SISADA_REGISTRY_DATABASE_URL) before dropping the columns")
    with op.batch_alter_table("foreigner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("age_base_year", sa.Integer(), nullable=True))
    # Born on 1 January: 0 on that very day; anyone else: on the next 1 January.
    born_on_new_year = ("(EXTRACT(MONTH FROM birth_date) = 1 AND EXTRACT(DAY FROM birth_date) = 1)"
                        if bind.dialect.name == "postgresql"
                        else "strftime('%m-%d', birth_date) = '01-01'")
    year = ("CAST(EXTRACT(YEAR FROM birth_date) AS INTEGER)" if bind.dialect.name == "postgresql"
            else "CAST(strftime('%Y', birth_date) AS INTEGER)")
    op.execute(f"UPDATE foreigner SET age_base_year = {year} + "
               f"CASE WHEN {born_on_new_year} THEN 0 ELSE 1 END")
    with op.batch_alter_table("foreigner", schema=None) as batch_op:
        batch_op.alter_column("age_base_year", existing_type=sa.Integer(), nullable=False)
        for column in ("full_name", "passport_number", "birth_date", "photo_url"):
            batch_op.drop_column(column)
    with op.batch_alter_table("stay_permit", schema=None) as batch_op:
        for column in ("number", "sponsor_name"):
            batch_op.drop_column(column)


def downgrade() -> None:
    # Identity does not come back: the columns return empty (nullable), the registry
    # keeps the only copy.
    with op.batch_alter_table("stay_permit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("sponsor_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("foreigner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("full_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("passport_number", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("photo_url", sa.String(length=300), nullable=True))
        batch_op.drop_column("age_base_year")
