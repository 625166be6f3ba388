"""access trail: one chained entry per request, record type and field set; its records in a
narrow side table (issue 10's cost bar)

A 1,000-row page with names wrote 1,000 wide, individually hashed rows; now it writes one
entry in `access_trail` and 1,000 rows (seq, record id) in `access_trail_record`, which the
entry's hash covers (resolvers.trail.chain, format 2).

The existing entries keep their hashes: each one's record id moves to
`access_trail_record`, and `chain_format` 1 tells verify to recompute it in the old
canonical form (one record per entry). `record_count` is 1 for them.

Append-only like `access_trail` (migration 0005): on PostgreSQL a statement trigger refuses
UPDATE, DELETE and TRUNCATE, DELETE passing only with `sisada.trail_prune` set to `on`; on
SQLite BEFORE UPDATE and BEFORE DELETE triggers abort (the prune drops and recreates the
delete trigger inside its own transaction). Production grants: the gateway's role holds
INSERT and SELECT on both tables and nothing else (README).

Downgrade: only while every entry is in format 1 — an entry listing several records has no
place in the old table, and rewriting it as per-record entries would need new hashes
(evidence is not rewritten); it refuses otherwise.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-12 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen here on purpose: migrations do not follow later edits of application code.
PG_FUNCTION = """
CREATE FUNCTION access_trail_record_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('sisada.trail_prune', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'access_trail_record is append-only';
END
$$
"""
PG_TRIGGER = """
CREATE TRIGGER access_trail_record_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON access_trail_record
FOR EACH STATEMENT EXECUTE FUNCTION access_trail_record_append_only()
"""
SQLITE_TRIGGERS = (
    "CREATE TRIGGER access_trail_record_no_update BEFORE UPDATE ON access_trail_record "
    "BEGIN SELECT RAISE(ABORT, 'access_trail_record is append-only'); END",
    "CREATE TRIGGER access_trail_record_no_delete BEFORE DELETE ON access_trail_record "
    "BEGIN SELECT RAISE(ABORT, 'access_trail_record is append-only'); END",
)
# Migration 0005's, recreated by the downgrade's table rebuild on SQLite.
SQLITE_TRAIL_TRIGGERS = (
    "CREATE TRIGGER access_trail_no_update BEFORE UPDATE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
    "CREATE TRIGGER access_trail_no_delete BEFORE DELETE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "access_trail_record",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=False),
        # Byte (code-point) order on PostgreSQL too, whatever the database's locale.
        sa.Column("record_id", sa.String(length=128).with_variant(
            sa.String(length=128, collation="C"), "postgresql"), primary_key=True),
        sqlite_with_rowid=False,
    )
    # Plain INSERT … SELECT: no trigger of 0005 stops reading the old table.
    op.execute("INSERT INTO access_trail_record (seq, record_id) "
               "SELECT seq, record_id FROM access_trail")
    op.create_index("ix_access_trail_record_id", "access_trail_record", ["record_id", "seq"])
    # Every existing entry is a one-record entry hashed in format 1.
    op.add_column("access_trail", sa.Column("record_count", sa.Integer(), nullable=False,
                                            server_default="1"))
    op.add_column("access_trail", sa.Column("chain_format", sa.SmallInteger(), nullable=False,
                                            server_default="1"))
    op.drop_index("ix_access_trail_record", table_name="access_trail")
    # SQLite ≥ 3.35 drops a column in place (no table rebuild: 0005's triggers stay, and
    # rewriting the rows fires no UPDATE trigger); PostgreSQL only marks it dropped.
    op.drop_column("access_trail", "record_id")
    if _postgresql():
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    newer = bind.execute(sa.text("SELECT count(*) FROM access_trail WHERE chain_format <> 1 "
                                 "OR record_count <> 1")).scalar_one()
    if newer:
        raise RuntimeError(
            f"refused: {newer} access-trail entries list their records in format 2, which "
            "the per-record table of revision 0005 cannot hold without new hashes")
    if _postgresql():
        op.execute("DROP TRIGGER access_trail_record_append_only ON access_trail_record")
        op.execute("DROP FUNCTION access_trail_record_append_only()")
        op.add_column("access_trail", sa.Column("record_id", sa.String(length=128)))
        # The owner's migration lifts 0005's trigger for this one statement, in this
        # transaction: filling a restored column changes no entry's content.
        op.execute("ALTER TABLE access_trail DISABLE TRIGGER access_trail_append_only")
        op.execute("UPDATE access_trail SET record_id = r.record_id FROM access_trail_record r "
                   "WHERE r.seq = access_trail.seq")
        op.execute("ALTER TABLE access_trail ENABLE TRIGGER access_trail_append_only")
        op.alter_column("access_trail", "record_id", nullable=False)
        op.drop_column("access_trail", "chain_format")
        op.drop_column("access_trail", "record_count")
    else:
        for name in ("access_trail_record_no_update", "access_trail_record_no_delete"):
            op.execute(f"DROP TRIGGER {name}")
        op.add_column("access_trail", sa.Column("record_id", sa.String(length=128)))
        op.execute("DROP TRIGGER access_trail_no_update")
        op.execute("UPDATE access_trail SET record_id = (SELECT r.record_id FROM "
                   "access_trail_record r WHERE r.seq = access_trail.seq)")
        # The rebuild (copy, drop, rename) drops 0005's other trigger with the old table.
        op.execute("DROP TRIGGER access_trail_no_delete")
        with op.batch_alter_table("access_trail") as batch:
            batch.alter_column("record_id", existing_type=sa.String(length=128),
                               nullable=False)
            batch.drop_column("chain_format")
            batch.drop_column("record_count")
        for statement in SQLITE_TRAIL_TRIGGERS:
            op.execute(statement)
    op.create_index("ix_access_trail_record", "access_trail", ["record_type", "record_id"])
    op.drop_index("ix_access_trail_record_id", table_name="access_trail_record")
    op.drop_table("access_trail_record")
