"""Each partner client's mode and registered documents, as the request path needs them.

Read from the database once per client per `operations_cache_seconds` (one statement,
documents included), never per request: `sisada operations` changes reach every running
gateway within that time. Concurrent requests of a client whose entry expired share one
read. A read that fails keeps the entry in force when there is one (a database hiccup must
not open an allow-list-only client, nor stop it); without one, the client's requests are
refused (fail closed) with `UNAVAILABLE`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from gateway.logging import log
from resolvers.db import Database
from resolvers.operations import ClientOperations, client_operations

# The longest a request waits for its client's entry to be read.
READ_TIMEOUT_SECONDS = 2.0
# Clients remembered per process (a token names one; a partner has a few).
MAX_CLIENTS = 1024


class AllowListUnavailableError(Exception):
    """The client's registered operations could not be read, and none are remembered."""


class AllowLists:
    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds
        # client -> (read at, its operations or None when no such client)
        self._entries: OrderedDict[str, tuple[float, ClientOperations | None]] = OrderedDict()
        self._reads: dict[str, asyncio.Future[ClientOperations | None]] = {}

    async def for_client(self, client: str) -> ClientOperations | None:
        """The client's mode and documents; None for a client never configured (open)."""
        entry = self._entries.get(client)
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        pending = self._reads.get(client)
        if pending is None:
            pending = asyncio.ensure_future(self._read(client, entry))
            self._reads[client] = pending
            pending.add_done_callback(lambda _f: self._reads.pop(client, None))
        return await asyncio.shield(pending)

    async def _read(self, client: str, stale: tuple[float, ClientOperations | None] | None
                    ) -> ClientOperations | None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                operations = await client_operations(self._db, client)
        except Exception as exc:  # the database's many error types: one outcome
            log.warning("operations.read_failed", client=client, error=type(exc).__name__)
            if stale is not None:
                return stale[1]
            raise AllowListUnavailableError() from exc
        self._entries[client] = (time.monotonic(), operations)
        self._entries.move_to_end(client)
        while len(self._entries) > MAX_CLIENTS:
            self._entries.popitem(last=False)
        return operations
