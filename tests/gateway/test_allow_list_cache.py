"""The allow-list as the request path reads it (gateway/persisted/allow_list.py): one
statement per client per cache period however many requests ask at once, changes seen
once the period is over, the last known entry kept while the database is away, and a
client nobody knew refused (fail closed) rather than opened. Real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import _drop_pg_database, migrated_database, run_async
from sqlalchemy import event

from gateway.persisted.allow_list import AllowLists, AllowListUnavailableError
from resolvers import operations
from resolvers.db import Database, create_engine


def counting(db: Database) -> list[str]:
    statements: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    return statements


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_requests_share_one_read_until_the_period_ends(
        backend: str, tmp_path: Path) -> None:
    with migrated_database(backend, tmp_path) as url:
        async def scenario() -> None:
            db = Database(create_engine(url))
            try:
                await operations.set_client_mode(db, "acme", operations.ALLOW_LIST)
                await operations.add_operation(db, "acme", "a" * 64, "{ __typename }", ["-"])
                lists = AllowLists(db, ttl_seconds=0.3)
                statements = counting(db)
                found = await asyncio.gather(*(lists.for_client("acme") for _ in range(50)))
                assert len(statements) == 1
                assert all(f is not None and f.allow_list_only for f in found)
                assert found[0] is not None and found[0].documents == {"a" * 64: "{ __typename }"}
                await lists.for_client("acme")
                assert len(statements) == 1  # within the period: no statement at all

                await operations.set_client_mode(db, "acme", operations.OPEN)
                assert (await lists.for_client("acme")).mode == operations.ALLOW_LIST  # type: ignore[union-attr]
                await asyncio.sleep(0.35)
                assert (await lists.for_client("acme")).mode == operations.OPEN  # type: ignore[union-attr]
                assert await lists.for_client("never-configured") is None
            finally:
                await db.engine.dispose()

        run_async(scenario())


def test_a_database_that_goes_away_keeps_the_last_entry_and_refuses_strangers(
        tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        async def prepare() -> None:
            db = Database(create_engine(url))
            try:
                await operations.set_client_mode(db, "acme", operations.ALLOW_LIST)
            finally:
                await db.engine.dispose()

        run_async(prepare())

        async def scenario() -> None:
            db = Database(create_engine(url))
            lists = AllowLists(db, ttl_seconds=0)
            try:
                assert (await lists.for_client("acme")).allow_list_only  # type: ignore[union-attr]
                await db.engine.dispose()
                _drop_pg_database(url.rsplit("/", 1)[1])
                started = time.monotonic()
                kept = await lists.for_client("acme")
                assert kept is not None and kept.allow_list_only  # not opened by the outage
                with pytest.raises(AllowListUnavailableError):
                    await lists.for_client("stranger")
                assert time.monotonic() - started < 10
            finally:
                await db.engine.dispose()

        run_async(scenario())
