"""Where Automatic Persisted Queries live: documents by principal and SHA-256.

Each principal has a namespace of its own (`namespace_of`): a caller finds only documents it
registered itself. A shared store would be an oracle: a document holds its literals (a
passport number an officer checked), and whether its hash is known tells anyone who can
recompute the hash that someone ran it (SPEC rules 4 and 5). The namespace is a hash of
the token's issuer and subject (of the client address, for anonymous callers), so the
store never holds either in clear.

In Redis when `redis_url` is set, so every replica finds what a principal registered at
any of them, under `prefix:namespace:sha256`, each key expiring `apq_ttl_seconds` after it
was last stored; otherwise in a bounded in-process LRU (`apq_cache_size` documents, all
namespaces together). Either way a document is stored only once it has run (it parsed,
validated and passed the limits: gateway/persisted/resolve.py), and never larger than
`max_document_bytes`.

The store is a cache: when Redis cannot be reached (bounded by `REDIS_TIMEOUT_SECONDS`) a
look-up is a miss and a store is skipped, with a warning; the client then sends the
document itself, which runs as usual.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.logging import log
from gateway.settings import Settings
from policies import Principal

REDIS_TIMEOUT_SECONDS = 1.0
# One warning per interval while Redis is down, not one per request.
WARNING_INTERVAL_SECONDS = 30.0


def namespace_of(principal: Principal, client_address: str) -> str:
    """The principal's APQ namespace: its token's issuer and subject; without a subject
    (the anonymous, or a token without `sub`), the client address as the rate limiter
    sees it (gateway/http_guards.client_address), with the role and jurisdiction. Hashed:
    neither a subject nor an address is stored in clear."""
    if principal.subject:
        parts = ("sub", principal.issuer or "-", principal.subject)
    else:
        officer = "-" if principal.officer_id is None else str(principal.officer_id)
        parts = ("addr", client_address, principal.role, principal.area or "-", officer)
    # NUL cannot occur in a subject (printable) nor in an address: the parts stay apart.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ApqStore(Protocol):
    async def get(self, namespace: str, sha256: str) -> str | None: ...

    async def put(self, namespace: str, sha256: str, document: str) -> None: ...

    async def close(self) -> None: ...


class MemoryApqStore:
    """A bounded LRU of documents in this process (one gateway, or the SQLite demo)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._documents: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def get(self, namespace: str, sha256: str) -> str | None:
        key = (namespace, sha256)
        document = self._documents.get(key)
        if document is not None:
            self._documents.move_to_end(key)
        return document

    async def put(self, namespace: str, sha256: str, document: str) -> None:
        key = (namespace, sha256)
        self._documents[key] = document
        self._documents.move_to_end(key)
        while len(self._documents) > self._size:
            self._documents.popitem(last=False)

    async def close(self) -> None:
        self._documents.clear()


class RedisApqStore:
    """Documents shared by the replicas, under `prefix:namespace:sha256`, each with a TTL."""

    def __init__(self, url: str, prefix: str, ttl_seconds: int) -> None:
        self._client = aioredis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                         socket_timeout=REDIS_TIMEOUT_SECONDS)
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._warned_at = -math.inf

    async def get(self, namespace: str, sha256: str) -> str | None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                value = await self._client.get(f"{self._prefix}:{namespace}:{sha256}")
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn("get", exc)
            return None
        if value is None:
            return None
        return bytes(value).decode("utf-8", "surrogatepass")

    async def put(self, namespace: str, sha256: str, document: str) -> None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                await self._client.set(f"{self._prefix}:{namespace}:{sha256}",
                                       document.encode("utf-8", "surrogatepass"), ex=self._ttl)
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn("put", exc)

    async def close(self) -> None:
        await self._client.aclose()

    def _warn(self, action: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARNING_INTERVAL_SECONDS:
            self._warned_at = now
            # The error's type only: a message may quote the URL, password included.
            log.warning("apq.redis_unavailable", action=action, error=type(exc).__name__)


def apq_store(settings: Settings) -> ApqStore:
    if settings.redis_url:
        return RedisApqStore(settings.redis_url, settings.apq_key_prefix,
                             settings.apq_ttl_seconds)
    return MemoryApqStore(settings.apq_cache_size)
