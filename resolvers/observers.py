"""Watching an engine from outside resolvers/: how long each statement takes, how many
pooled connections are in use. The gateway's metrics pass plain callbacks, so SQLAlchemy
stays here.

SQLAlchemy's events on the engine's synchronous core: two calls around each statement and
one per connection checkout and checkin, nothing per row.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_STARTED = "sisada.statement_started"


def observe_engine(
    engine: AsyncEngine,
    *,
    statement: Callable[[float], None],
    in_use: Callable[[int], None],
) -> None:
    """`statement(seconds)` after each statement that completed; `in_use(+1)` when a
    connection is checked out of the pool, `in_use(-1)` when it returns (or is
    invalidated on the way back)."""
    sync = engine.sync_engine

    def before(conn: Any, *_args: Any) -> None:
        conn.info[_STARTED] = perf_counter()

    def after(conn: Any, *_args: Any) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            statement(perf_counter() - started)

    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    event.listen(sync.pool, "checkout", lambda *_args: in_use(1))
    event.listen(sync.pool, "checkin", lambda *_args: in_use(-1))
