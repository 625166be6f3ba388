"""Per-client-IP and per-principal request limits; the public report submission hardest.

Every request to /graphql counts once per operation (a batch of five counts five) against

- its client IP (`rate_limit_per_ip`), and
- its principal (`rate_limit_per_principal`): the token's subject, or role and area when the
  token has none. Anonymous callers are limited by IP only: they share one role and no
  subject, so a per-principal count would make every member of the public share one budget.

A `submitReport` selection, the one mutation anyone can call without a token, also counts
against `rate_limit_submit_report`: per IP for anonymous callers, per principal otherwise.
It is found by parsing the document (aliases, fragments and batches included), never by
matching text, and each selection counts.

Windows are moving (a burst at a window's edge cannot double the rate). Counts live in
memory, or in Redis when `redis_url` is set so that replicas share them. When Redis cannot
be reached, ordinary requests fail open (served, and a warning logged: an outage of the
counter store must not take the API down), while report submission fails closed with 503
`UNAVAILABLE` (it is what an anonymous flood would target, and a caller told to retry
loses nothing).

Exceeding a limit is a 429 `RATE_LIMITED` with `Retry-After`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from gateway.http_guards import GRAPHQL_REQUEST, ASGIApp, Receive, Scope, Send, error_response
from gateway.logging import log
from gateway.settings import Settings
from policies import Principal

# The public mutation limited hardest (a root field of Mutation, by its GraphQL name).
SUBMIT_REPORT = "submitReport"
# A slow or unreachable Redis must not hold requests: fail fast, then fail open or closed.
REDIS_TIMEOUT_SECONDS = 1.0
# What a caller is told to wait when report submission fails closed.
UNAVAILABLE_RETRY_SECONDS = 30
# One warning per interval while the counter store is down, not one per request.
WARNING_INTERVAL_SECONDS = 30.0
# Beyond any limit; stops a fragment bomb from growing the count without bound.
_MAX_COUNT = 1_000_000


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not served: HTTP status, error code, message, seconds to wait."""

    status: int
    code: str
    message: str
    retry_after: int


class RateLimiter:
    """Counts requests and says whether one may proceed."""

    def __init__(self, settings: Settings, anonymous_role: str) -> None:
        self._anonymous_role = anonymous_role
        self._per_ip = parse_many(settings.rate_limit_per_ip)
        self._per_principal = parse_many(settings.rate_limit_per_principal)
        self._submit_report = parse_many(settings.rate_limit_submit_report)
        self._max_tokens = settings.max_tokens
        self._storage = _storage(settings)
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._warned_at = -math.inf

    async def check(self, principal: Principal, client_ip: str,
                    operations: Sequence[Mapping[str, Any]], method: str) -> Refusal | None:
        anonymous = principal.role == self._anonymous_role
        rules = [(self._per_ip, ("ip", client_ip))]
        if not anonymous:
            rules.append((self._per_principal, ("principal", *_principal_key(principal))))
        try:
            wait = await self._hit(rules, cost=max(1, len(operations)))
        except StorageError as exc:
            self._warn(exc, fails="open")
            wait = None
        if wait is not None:
            return Refusal(429, "RATE_LIMITED", "too many requests", wait)

        # Mutations run over POST only (a GET mutation is refused with 405 anyway).
        reports = report_submissions(operations, self._max_tokens) if method == "POST" else 0
        if not reports:
            return None
        who = ("ip", client_ip) if anonymous else _principal_key(principal)
        try:
            wait = await self._hit([(self._submit_report, ("submit-report", *who))], reports)
        except StorageError as exc:
            self._warn(exc, fails="closed")
            return Refusal(503, "UNAVAILABLE", "report submission is unavailable right now",
                           UNAVAILABLE_RETRY_SECONDS)
        if wait is not None:
            return Refusal(429, "RATE_LIMITED", "too many reports submitted", wait)
        return None

    async def _hit(self, rules: Sequence[tuple[Sequence[RateLimitItem], tuple[str, ...]]],
                   cost: int) -> int | None:
        """Counts the request against every rule; seconds to wait if any is exhausted."""
        wait: int | None = None
        for items, key in rules:
            for item in items:
                if await self._strategy.hit(item, *key, cost=cost):
                    continue
                stats = await self._strategy.get_window_stats(item, *key)
                seconds = max(1, math.ceil(stats.reset_time - time.time()))
                wait = max(wait or 0, seconds)
        return wait

    def _warn(self, exc: StorageError, fails: str) -> None:
        now = time.monotonic()
        if now - self._warned_at < WARNING_INTERVAL_SECONDS:
            return
        self._warned_at = now
        # The storage URL may carry a password: name the error's type, never the target.
        log.warning("rate_limit.storage_unavailable", fails=fails,
                    error=type(exc.storage_error).__name__)


class RateLimitMiddleware:
    """ASGI middleware behind AuthMiddleware (it needs `scope["sisada.principal"]`) and
    HttpGuard (it reads the vetted operations)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        refusal = await self.limiter.check(
            scope["sisada.principal"], client[0] if client else "unknown",
            scope.get(GRAPHQL_REQUEST, ()), scope["method"])
        if refusal is None:
            await self.app(scope, receive, send)
            return
        response = error_response(refusal.status, refusal.message, refusal.code,
                                  {"Retry-After": str(refusal.retry_after)})
        await response(scope, receive, send)


def rate_limited(app: ASGIApp, settings: Settings, anonymous_role: str) -> ASGIApp:
    """`app` behind the configured limits, or `app` itself when they are disabled."""
    if not settings.rate_limits_enabled:
        return app
    return RateLimitMiddleware(app, RateLimiter(settings, anonymous_role))


def report_submissions(operations: Sequence[Mapping[str, Any]], max_tokens: int) -> int:
    """How many `submitReport` root fields the request would run."""
    total = 0
    for operation in operations:
        query = operation.get("query")
        # GraphQL has no escapes in names: a document without the text cannot select the field.
        if not isinstance(query, str) or SUBMIT_REPORT not in query:
            continue
        name = operation.get("operationName")
        total += _submissions_in(query, name if isinstance(name, str) else None, max_tokens)
    return min(total, _MAX_COUNT)


def _submissions_in(query: str, operation_name: str | None, max_tokens: int) -> int:
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except (GraphQLError, RecursionError):
        # GraphQL refuses an unreadable document too; counting it once means no corner of
        # the parser is a way around the limit.
        return 1
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    counter = _RootFieldCounter(fragments, SUBMIT_REPORT)
    return sum(
        counter.count(d.selection_set) for d in document.definitions
        if isinstance(d, OperationDefinitionNode) and d.operation is OperationType.MUTATION
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    )


class _RootFieldCounter:
    """Counts root fields of one name, through fragments and inline fragments (not into
    the fields' own selections, which belong to their results)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], field: str) -> None:
        self.fragments = fragments
        self.field = field
        self.memo: dict[str, int] = {}
        self.visiting: set[str] = set()

    def count(self, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += selection.name.value == self.field
            elif isinstance(selection, InlineFragmentNode):
                total += self.count(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value)
        return min(total, _MAX_COUNT)

    def _fragment(self, name: str) -> int:
        if name in self.memo:
            return self.memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return 0  # unknown or cyclic: GraphQL validation refuses the document
        self.visiting.add(name)
        self.memo[name] = self.count(fragment.selection_set)
        self.visiting.discard(name)
        return self.memo[name]


def _principal_key(principal: Principal) -> tuple[str, ...]:
    if principal.subject:
        return ("sub", principal.subject)
    return ("role", principal.role, principal.area or "-")


def _storage(settings: Settings) -> Storage:
    if not settings.redis_url:
        return MemoryStorage()
    return RedisStorage(
        _async_uri(settings.redis_url),
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=settings.rate_limit_key_prefix,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )


def _async_uri(url: str) -> str:
    """`redis://…` as `limits` names its asyncio storage: `async+redis://…`."""
    if url.startswith("async+"):
        return url
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url
