"""How replicas tell each other that the event outbox has grown.

The outbox (resolvers/outbox.py) is the log; a bus only carries wake-ups: "events up to
id N are committed". Each replica's relay then reads the rows it has not dispatched yet,
in id order, from the database. So a bus message can be lost, duplicated or reordered
without losing or repeating an event (the relay also polls), and nothing a caller may not
read ever crosses the bus: the message is a number.

Chosen by `SISADA_EVENT_BUS`: in-process (`memory`, one gateway), Redis pub/sub (`redis`)
or PostgreSQL LISTEN/NOTIFY (`postgres`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.settings import Settings

# A replica's handler for "events up to this id are committed".
OnCommitted = Callable[[int], None]


class EventBus(Protocol):
    name: str

    async def start(self, on_committed: OnCommitted) -> None:
        """Begin delivering messages (from every replica, this one included)."""

    async def publish(self, last_id: int) -> None:
        """Tell every replica that events up to `last_id` are committed. Never raises: a
        lost message only delays the others until their next poll."""

    async def close(self) -> None: ...


def bus_name(settings: Settings) -> str:
    if settings.event_bus is not None:
        return settings.event_bus
    if settings.redis_url:
        return "redis"
    if settings.database_url.startswith("postgresql"):
        return "postgres"
    return "memory"


def bus_from_settings(settings: Settings) -> EventBus:
    name = bus_name(settings)
    if name == "redis":
        from gateway.event_bus.redis import RedisBus

        if not settings.redis_url:
            raise ValueError("SISADA_EVENT_BUS=redis needs SISADA_REDIS_URL")
        return RedisBus(settings.redis_url, settings.event_channel)
    if name == "postgres":
        from gateway.event_bus.postgres import PostgresBus

        if not settings.database_url.startswith("postgresql"):
            raise ValueError("SISADA_EVENT_BUS=postgres needs a PostgreSQL database")
        return PostgresBus(settings.database_url, settings.event_channel)
    from gateway.event_bus.memory import MemoryBus

    return MemoryBus()
