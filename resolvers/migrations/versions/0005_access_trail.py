"""access trail: the append-only, hash-chained record of identity reads (SPEC rule 6)

One row per record whose identity fields a response carried: who read (issuer, subject,
role, area, office, officer), which record, which field names, why (purpose), and which
request. `seq` is assigned by the writer and chains the rows (resolvers.trail).

Append-only at the database level too:
- PostgreSQL: a statement trigger refuses UPDATE, DELETE and TRUNCATE. DELETE alone passes
  when the transaction has set `sisada.trail_prune` to `on` — only `sisada trail prune`
  does. Any role can set such a setting, so this guards against mistakes, not against a
  hostile role: in production the gateway's role holds INSERT and SELECT on the table and
  nothing else (README, "The access trail: storage").
- SQLite: BEFORE UPDATE and BEFORE DELETE triggers abort; the prune drops and recreates the
  delete trigger inside its own write transaction.

A later migration that rebuilds this table on SQLite (a batch alter: copy, drop, rename)
loses the triggers with the old table and must create them again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen here on purpose: migrations do not follow later edits of application code.
PG_FUNCTION = """
CREATE FUNCTION access_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('sisada.trail_prune', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'access_trail is append-only';
END
$$
"""
PG_TRIGGER = """
CREATE TRIGGER access_trail_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON access_trail
FOR EACH STATEMENT EXECUTE FUNCTION access_trail_append_only()
"""
SQLITE_TRIGGERS = (
    "CREATE TRIGGER access_trail_no_update BEFORE UPDATE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
    "CREATE TRIGGER access_trail_no_delete BEFORE DELETE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
)


def upgrade() -> None:
    op.create_table(
        "access_trail",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("area", sa.String(length=32), nullable=True),
        sa.Column("office_code", sa.String(length=32), nullable=True),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("operation_name", sa.Text(), nullable=True),
        sa.Column("document_hash", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
    )
    op.create_index("ix_access_trail_at", "access_trail", ["at"])
    op.create_index("ix_access_trail_subject", "access_trail", ["subject"])
    op.create_index("ix_access_trail_office_code", "access_trail", ["office_code"])
    op.create_index("ix_access_trail_record", "access_trail", ["record_type", "record_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_trail_append_only ON access_trail")
        op.execute("DROP FUNCTION IF EXISTS access_trail_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS access_trail_no_update")
        op.execute("DROP TRIGGER IF EXISTS access_trail_no_delete")
    op.drop_index("ix_access_trail_record", table_name="access_trail")
    op.drop_index("ix_access_trail_office_code", table_name="access_trail")
    op.drop_index("ix_access_trail_subject", table_name="access_trail")
    op.drop_index("ix_access_trail_at", table_name="access_trail")
    op.drop_table("access_trail")
