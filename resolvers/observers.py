"""Watching an engine from outside resolvers/: how long each statement takes, how many
pooled connections are in use (metrics), and a span around each statement (traces). The
gateway passes plain callbacks or an observer, so SQLAlchemy stays here.

SQLAlchemy's events on the engine's synchronous core: two calls around each statement and
one per connection checkout and checkin, nothing per row.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol

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
    # Counted per connection record: a record returned without having been counted out
    # (a checkin after an invalidation, or one already counted in) moves nothing, so the
    # gauge never drifts below what is really out (it read -1 after database faults).
    out: set[int] = set()

    def checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
        if id(record) not in out:
            out.add(id(record))
            in_use(1)

    def checked_in(_dbapi: Any, record: Any) -> None:
        if id(record) in out:
            out.discard(id(record))
            in_use(-1)

    event.listen(sync.pool, "checkout", checked_out)
    event.listen(sync.pool, "checkin", checked_in)


class StatementObserver(Protocol):
    """Told of each statement an engine sends: its kind (SELECT, INSERT, …) only, never
    its text or parameters. `started` returns a token for `ended`, or None to skip it."""

    def started(self, kind: str) -> object | None: ...

    def ended(self, token: object, error: BaseException | None) -> None: ...


_OBSERVED = "_sisada_observed"
# The first word of a statement, when it is a plain keyword.
_KIND_WORD = 12


def statement_kind(statement: str) -> str:
    word = statement.lstrip()[:_KIND_WORD].split(None, 1)
    kind = word[0].upper() if word else ""
    return kind if kind.isalpha() else "OTHER"


def observe_statements(engine: AsyncEngine, observer: StatementObserver) -> None:
    """Call `observer` around every statement `engine` sends. Nothing is attached to an
    engine nobody observes (the hot path pays nothing then)."""
    sync = engine.sync_engine

    def before(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any,
               _executemany: bool) -> None:
        if context is not None:
            setattr(context, _OBSERVED, observer.started(statement_kind(statement)))

    def after(_conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any,
              _executemany: bool) -> None:
        token = getattr(context, _OBSERVED, None)
        if token is not None:
            setattr(context, _OBSERVED, None)
            observer.ended(token, None)

    def failed(exception_context: Any) -> None:
        context = exception_context.execution_context
        token = getattr(context, _OBSERVED, None)
        if token is not None:
            setattr(context, _OBSERVED, None)
            observer.ended(token, exception_context.original_exception)

    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    event.listen(sync, "handle_error", failed)
