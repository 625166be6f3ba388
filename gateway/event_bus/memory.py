"""The bus of a single gateway process: a message is a function call."""

from __future__ import annotations

from gateway.event_bus import OnCommitted


class MemoryBus:
    name = "memory"

    def __init__(self) -> None:
        self._on_committed: OnCommitted | None = None

    async def start(self, on_committed: OnCommitted) -> None:
        self._on_committed = on_committed

    async def publish(self, last_id: int) -> None:
        if self._on_committed is not None:
            self._on_committed(last_id)

    async def close(self) -> None:
        self._on_committed = None
