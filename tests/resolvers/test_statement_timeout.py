"""The PostgreSQL statement timeout: set on every connection of the engine create_engine
builds (SISADA_DATABASE_STATEMENT_TIMEOUT_SECONDS, by default the request timeout), so the
server itself cancels a statement nobody waits for any more. Real PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import make_settings, run_async
from sqlalchemy import exc, text

from gateway.app import AppState
from gateway.settings import MIN_DEFAULT_STATEMENT_TIMEOUT_SECONDS, Settings
from resolvers.db import Database, create_engine


async def show_statement_timeout(db: Database) -> str:
    try:
        return str(await db.scalar(text("SHOW statement_timeout")))
    finally:
        await db.engine.dispose()


def test_the_setting_reaches_the_connection(postgres_database: str) -> None:
    db = Database(create_engine(postgres_database, statement_timeout=0.25))
    assert run_async(show_statement_timeout(db)) == "250ms"


def test_zero_leaves_the_servers_own_setting(postgres_database: str) -> None:
    db = Database(create_engine(postgres_database))
    assert run_async(show_statement_timeout(db)) == "0"


def test_a_statement_longer_than_the_timeout_is_cancelled_by_the_server(
    postgres_database: str,
) -> None:
    db = Database(create_engine(postgres_database, statement_timeout=0.2))

    async def sleep() -> None:
        try:
            await db.scalar(text("SELECT pg_sleep(5)"))
        finally:
            await db.engine.dispose()

    started = time.monotonic()
    with pytest.raises(exc.DBAPIError) as cancelled:
        run_async(sleep())
    assert time.monotonic() - started < 3
    assert getattr(cancelled.value.orig, "sqlstate", None) == "57014"
    assert "canceling statement due to statement timeout" in str(cancelled.value.orig)


def test_the_default_is_the_request_timeout_never_below_its_floor() -> None:
    settings = Settings(request_timeout_seconds=7)
    assert settings.statement_timeout_seconds == 7
    assert Settings(request_timeout_seconds=7,
                    database_statement_timeout_seconds=2).statement_timeout_seconds == 2
    # A very short request timeout stops the request (TIMEOUT) before the server would
    # cancel its statements: the default backs it, it does not overtake it.
    assert (Settings(request_timeout_seconds=0.001).statement_timeout_seconds
            == MIN_DEFAULT_STATEMENT_TIMEOUT_SECONDS)


def test_the_gateways_engine_carries_the_setting(postgres_database: str, tmp_path: Path) -> None:
    state = AppState(make_settings(postgres_database, tmp_path, request_timeout_seconds=9))
    assert run_async(show_statement_timeout(state.db)) == "9s"
    state = AppState(make_settings(postgres_database, tmp_path,
                                   database_statement_timeout_seconds=1.5))
    assert run_async(show_statement_timeout(state.db)) == "1500ms"
