"""Per-client-IP and per-principal request limits; receipt-code look-ups and the public
report submission hardest.

A request counts what an attacker would guess with: every root field it would run, aliases
and fragments included, across every operation of a batch (an operation without a readable
root field counts one). Ten operations of thirty aliases each count 300. That count goes
against

- its client IP (`rate_limit_per_ip`), and
- its principal (`rate_limit_per_principal`): the verified token's issuer and subject, or
  role and area when the token has none; the same behind a router that forwards the token.
  Anonymous callers are limited by IP only: they share one role and no subject, so a
  per-principal count would make every member of the public share one budget.

Each `reportStatus` selection — a guess at a receipt code — also counts against
`rate_limit_report_status` per client IP, whoever asks; and each `submitReport` selection,
the one mutation anyone can call without a token, against `rate_limit_submit_report`: per
IP for anonymous callers, per principal otherwise. Root fields are found by parsing the
document (aliases, fragments and batches included), never by matching text.

Windows are moving (a burst at a window's edge cannot double the rate). Counts live in
memory, or in Redis when `redis_url` is set so that replicas share them. When Redis cannot
be reached, ordinary requests fail open (served, and a warning logged: an outage of the
counter store must not take the API down), while receipt-code look-ups and report
submission fail closed with 503 `UNAVAILABLE` (they are what an anonymous flood would
target, and a caller told to retry loses nothing).

Exceeding a limit is a 429 `RATE_LIMITED` with `Retry-After`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
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

from gateway.http_guards import (
    GRAPHQL_REQUEST,
    ASGIApp,
    Receive,
    Scope,
    Send,
    client_address,
    error_response,
)
from gateway.logging import log
from gateway.settings import Settings
from policies import Principal

# The public mutation limited hardest (a root field of Mutation, by its GraphQL name).
SUBMIT_REPORT = "submitReport"
# The receipt-code look-up (a root field of Query): each one is a guess at a code.
REPORT_STATUS = "reportStatus"
# A slow or unreachable Redis must not hold requests: fail fast, then fail open or closed.
REDIS_TIMEOUT_SECONDS = 1.0
# What a caller is told to wait when report submission fails closed.
UNAVAILABLE_RETRY_SECONDS = 30
# One warning per interval while the counter store is down, not one per request.
WARNING_INTERVAL_SECONDS = 30.0
# Beyond any limit; stops a fragment bomb from growing the count without bound.
_MAX_COUNT = 1_000_000
# Documents whose root fields are remembered: a client repeats its few queries.
_PARSED_DOCUMENTS = 512


@dataclass(frozen=True, slots=True)
class RootFields:
    """What a request would run, counted by root field."""

    total: int = 0  # every root field, at least one per operation
    submissions: int = 0  # `submitReport` selections (mutations, POST only)
    status_lookups: int = 0  # `reportStatus` selections


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
        self._report_status = parse_many(settings.rate_limit_report_status)
        self._max_tokens = settings.max_tokens
        self._storage = _storage(settings)
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._warned_at = -math.inf

    async def check(self, principal: Principal, client_ip: str,
                    operations: Sequence[Mapping[str, Any]], method: str) -> Refusal | None:
        anonymous = principal.role == self._anonymous_role
        # Mutations run over POST only (a GET mutation is refused with 405 anyway).
        fields = root_fields(operations, self._max_tokens, mutations=method == "POST")
        rules = [(self._per_ip, ("ip", client_ip))]
        if not anonymous:
            rules.append((self._per_principal, ("principal", *_principal_key(principal))))
        try:
            wait = await self._hit(rules, cost=max(1, len(operations), fields.total))
        except StorageError as exc:
            self._warn(exc, fails="open")
            wait = None
        if wait is not None:
            return Refusal(429, "RATE_LIMITED", "too many requests", wait)

        if fields.status_lookups:
            refusal = await self._guarded(
                self._report_status, ("report-status", client_ip), fields.status_lookups,
                "report status", "too many report status look-ups")
            if refusal is not None:
                return refusal

        if not fields.submissions:
            return None
        who = ("ip", client_ip) if anonymous else _principal_key(principal)
        return await self._guarded(self._submit_report, ("submit-report", *who),
                                   fields.submissions, "report submission",
                                   "too many reports submitted")

    async def _guarded(self, items: Sequence[RateLimitItem], key: tuple[str, ...], cost: int,
                       what: str, too_many: str) -> Refusal | None:
        """A limit that fails closed: without its storage, the guarded operation waits."""
        try:
            wait = await self._hit([(items, key)], cost)
        except StorageError as exc:
            self._warn(exc, fails="closed")
            return Refusal(503, "UNAVAILABLE", f"{what} is unavailable right now",
                           UNAVAILABLE_RETRY_SECONDS)
        if wait is not None:
            return Refusal(429, "RATE_LIMITED", too_many, wait)
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
        refusal = await self.limiter.check(
            scope["sisada.principal"], client_address(scope),
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


def root_fields(operations: Sequence[Mapping[str, Any]], max_tokens: int,
                mutations: bool = True) -> RootFields:
    """The root fields the request would run (`mutations=False`: no mutation runs)."""
    total = submissions = lookups = 0
    for operation in operations:
        query = operation.get("query")
        name = operation.get("operationName")
        counts = _document_root_fields(query if isinstance(query, str) else "",
                                       name if isinstance(name, str) else None, max_tokens)
        total += max(1, counts.total)
        submissions += counts.submissions if mutations else 0
        lookups += counts.status_lookups
    return RootFields(min(total, _MAX_COUNT), min(submissions, _MAX_COUNT),
                      min(lookups, _MAX_COUNT))


@lru_cache(maxsize=_PARSED_DOCUMENTS)
def _document_root_fields(query: str, operation_name: str | None,
                          max_tokens: int) -> RootFields:
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except (GraphQLError, RecursionError):
        # GraphQL refuses an unreadable document too; counting it once (and once as each
        # field it names) means no corner of the parser is a way around a limit. GraphQL
        # has no escapes in names: a document without the text cannot select the field.
        return RootFields(1, int(SUBMIT_REPORT in query), int(REPORT_STATUS in query))
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    counter = _RootFieldCounter(fragments)
    total = submissions = lookups = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode) or (
                operation_name is not None and (definition.name is None
                                                or definition.name.value != operation_name)):
            continue
        counts = counter.count(definition.selection_set)
        total += sum(counts.values())
        if definition.operation is OperationType.MUTATION:
            submissions += counts[SUBMIT_REPORT]
        elif definition.operation is OperationType.QUERY:
            lookups += counts[REPORT_STATUS]
    return RootFields(min(total, _MAX_COUNT), min(submissions, _MAX_COUNT),
                      min(lookups, _MAX_COUNT))


class _RootFieldCounter:
    """Counts root fields by name, through fragments and inline fragments (not into the
    fields' own selections, which belong to their results)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, Counter[str]] = {}
        self.visiting: set[str] = set()

    def count(self, selection_set: SelectionSetNode) -> Counter[str]:
        total: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total[selection.name.value] += 1
            elif isinstance(selection, InlineFragmentNode):
                total.update(self.count(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                total.update(self._fragment(selection.name.value))
        return Counter({name: min(n, _MAX_COUNT) for name, n in total.items()})

    def _fragment(self, name: str) -> Counter[str]:
        if name in self.memo:
            return self.memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return Counter()  # unknown or cyclic: GraphQL validation refuses the document
        self.visiting.add(name)
        self.memo[name] = self.count(fragment.selection_set)
        self.visiting.discard(name)
        return self.memo[name]


def _principal_key(principal: Principal) -> tuple[str, ...]:
    # The verified token's issuer and subject (a subject is unique only within its issuer):
    # the same key whether the token came straight from the client or through a router
    # that forwards it, so a router's one address never pools its users' budgets.
    if principal.subject:
        return ("sub", principal.issuer or "-", principal.subject)
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
