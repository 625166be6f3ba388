"""PostgreSQL LISTEN/NOTIFY between replicas: the message is the last committed event id.

One dedicated connection per replica listens (a pooled connection cannot: LISTEN belongs
to its session) and also sends the notifications. It reconnects by itself with a capped
back-off; while it is down, events arrive by the relay's poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from gateway.event_bus import OnCommitted
from gateway.logging import log

CONNECT_TIMEOUT_SECONDS = 5.0
PUBLISH_TIMEOUT_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0


def _dsn(database_url: str) -> str:
    # SQLAlchemy's URL ("postgresql+asyncpg://…") as asyncpg takes it.
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresBus:
    name = "postgres"

    def __init__(self, database_url: str, channel: str) -> None:
        self._dsn = _dsn(database_url)
        self._channel = channel
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self, on_committed: OnCommitted) -> None:
        self._task = asyncio.create_task(self._listen(on_committed))

    async def _listen(self, on_committed: OnCommitted) -> None:
        def deliver(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload.isdigit() and len(payload) < 20:
                on_committed(int(payload))

        backoff = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
                await conn.add_listener(self._channel, deliver)
                self._conn = conn
                backoff = 0.1
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await lost.wait()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("events.postgres_unavailable", error=type(exc).__name__)
            finally:
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def publish(self, last_id: int) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            async with self._lock, asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await conn.execute("SELECT pg_notify($1, $2)", self._channel, str(last_id))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("events.publish_failed", bus=self.name, error=type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
