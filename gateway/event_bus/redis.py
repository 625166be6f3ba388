"""Redis pub/sub between replicas: the message is the last committed event id.

Pub/sub delivers to whoever listens at the moment and keeps nothing; that is enough here,
because the outbox keeps the events and each relay polls it too. The listener reconnects
by itself with a capped back-off; while Redis is away, events arrive by the poll.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.event_bus import OnCommitted
from gateway.logging import log

PUBLISH_TIMEOUT_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0


class RedisBus:
    name = "redis"

    def __init__(self, url: str, channel: str) -> None:
        self._client = aioredis.from_url(url, socket_connect_timeout=2,
                                         socket_timeout=PUBLISH_TIMEOUT_SECONDS * 5)
        self._channel = channel
        self._task: asyncio.Task[None] | None = None

    async def start(self, on_committed: OnCommitted) -> None:
        self._task = asyncio.create_task(self._listen(on_committed))

    async def _listen(self, on_committed: OnCommitted) -> None:
        backoff = 0.1
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                backoff = 0.1
                async for message in pubsub.listen():
                    data = message.get("data")
                    if isinstance(data, bytes) and data.isdigit() and len(data) < 20:
                        on_committed(int(data))
            except (RedisError, OSError) as exc:
                log.warning("events.redis_unavailable", error=type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def publish(self, last_id: int) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await self._client.publish(self._channel, str(last_id))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("events.publish_failed", bus=self.name, error=type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._client.aclose()
