"""The relay: reads committed outbox rows in id order and hands them to the hub.

It wakes when this replica committed a mutation (`nudge`), when the bus says another
replica did, and every `event_poll_seconds` regardless. After a local mutation it
publishes the last id it found, which wakes the other replicas. A publish that never
happened (a crash after the commit, a bus outage) only makes the others wait for their
poll: the outbox, not the bus, holds the events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.event_bus import EventBus
from gateway.logging import log
from gateway.subscriptions.hub import Dispatch
from resolvers import outbox
from resolvers.db import Database, DatabaseUnavailableError


class Relay:
    def __init__(self, db: Database, bus: EventBus, dispatch: Dispatch, *,
                 poll_seconds: float, batch: int,
                 on_ready: Callable[[int], None] | None = None) -> None:
        self.db = db
        self.bus = bus
        self.dispatch = dispatch
        self.poll_seconds = poll_seconds
        self.batch = batch
        # None until the outbox's end is known: only events after it are live.
        self.last_id: int | None = None
        self.on_ready = on_ready
        self._wake = asyncio.Event()
        self._local = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.start(self._on_committed)
        self._task = asyncio.create_task(self._run())

    def nudge(self) -> None:
        """This replica committed something that may have written events."""
        self._local = True
        self._wake.set()

    def _on_committed(self, last_id: int) -> None:
        if self.last_id is not None and last_id > self.last_id:
            self._wake.set()

    async def _begin(self) -> int:
        """Where the live stream starts: the outbox's last id when this replica started
        (earlier events are history, served by `after`). Retried until the database answers."""
        while True:
            try:
                last_id = await outbox.last_event_id(self.db)
            except Exception as exc:  # unavailable, or not migrated yet: keep trying
                log.warning("events.outbox_unavailable", error=type(exc).__name__)
                await asyncio.sleep(self.poll_seconds)
                continue
            if self.on_ready is not None:
                self.on_ready(last_id)
            return last_id

    async def _run(self) -> None:
        self.last_id = await self._begin()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            local, self._local = self._local, False
            try:
                events = await outbox.events_after(self.db, self.last_id, self.batch)
            except DatabaseUnavailableError:
                log.warning("events.outbox_unavailable")
                continue
            except Exception as exc:  # e.g. the table is missing: keep serving, say so
                log.error("events.outbox_failed", error=type(exc).__name__)
                continue
            if not events:
                continue
            self.last_id = events[-1].id
            if local:
                await self.bus.publish(self.last_id)
            await self.dispatch(events)
            if len(events) == self.batch:
                self._wake.set()  # more are waiting

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.bus.close()
