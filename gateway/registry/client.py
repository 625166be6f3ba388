"""`RegistryClient`: the registry (resolvers.identity.IdentitySource) over pooled HTTP.

Every call is an idempotent read, so transport failures and 502/503/504 are retried with
jittered back-off (stamina) inside one total deadline; a circuit breaker (breaker.py)
stops asking a registry that keeps failing. httpx errors are translated here, once, into
`IdentityUnavailableError` with a fixed, short reason: no message or log line carries a
response body, a request's variables or anything the caller sent.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from http.cookiejar import CookieJar, DefaultCookiePolicy
from itertools import chain
from typing import Any, TypeVar

import httpx
import orjson
import stamina

from gateway import metrics
from gateway.logging import log
from gateway.registry.breaker import BreakerState, CircuitBreaker
from gateway.registry.queries import (
    BY_DOCUMENT,
    BY_NAME,
    PING,
    MalformedAnswerError,
    checked_selections,
    entities_document,
    ids_of,
    page_ids,
    read_entities,
    read_list,
    read_typename,
    representations,
)
from gateway.settings import Settings
from gateway.tracing import Span, Tracer, response_status, upstream_span
from resolvers.identity import (
    EntityKey,
    EntityResult,
    IdentityUnavailableError,
    LookupTooBroadError,
)

T = TypeVar("T")

ACCEPT = "application/graphql-response+json, application/json"
# Gateway errors and restarts behind a proxy; anything else (4xx, 500) would fail again.
RETRIED_STATUSES = frozenset({502, 503, 504})
# A readiness probe must answer fast whatever the registry does.
PING_TIMEOUT_SECONDS = 1.0
# People per `personsByName` page (the registry takes `first` up to 5,001).
NAME_PAGE_SIZE = 5000
# Back-off between attempts (seconds): short, because the whole call shares one deadline.
WAIT_INITIAL, WAIT_MAX, WAIT_JITTER = 0.05, 1.0, 0.2
# A request id travels as a header: anything else is replaced, never forwarded as is.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class _RetryableError(IdentityUnavailableError):
    """A failure worth another attempt. Its repr is the safe reason (stamina logs it)."""


class RegistryClient:
    """One per process: one connection pool, one breaker.

    `transport` replaces the network (httpx.MockTransport in unit tests); `clock` drives
    the breaker's pause (a fake clock in unit tests)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        tracer: Tracer | None = None,
    ) -> None:
        if not settings.registry_url:
            raise ValueError("RegistryClient needs settings.registry_url")
        self.url = settings.registry_url
        self._settings = settings
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        # Traces (gateway/tracing.py): a span per HTTP call, its context sent along. None: off.
        self._tracer = tracer
        self._host = httpx.URL(self.url).host
        self._breaker = CircuitBreaker(settings.registry_breaker_failures,
                                       settings.registry_breaker_reset_seconds,
                                       clock=clock, on_change=self._circuit_changed)
        # The state /metrics counts this client in (as of the breaker's last transition).
        self._counted_state: BreakerState = "closed"
        metrics.circuit_changed(None, "closed")
        # /readyz: the last ping's (time, answer), and the ping in flight (with its loop).
        self._status: tuple[float, str] | None = None
        self._ping_task: asyncio.Task[str] | None = None
        self._ping_loop: asyncio.AbstractEventLoop | None = None

    @property
    def state(self) -> BreakerState:
        """The circuit: "closed", "open" or "half_open"."""
        return self._breaker.state

    # -- IdentitySource --

    async def entities(
        self,
        keys: Sequence[EntityKey],
        selections: Mapping[str, frozenset[str]],
        request_id: str,
    ) -> list[EntityResult]:
        checked = checked_selections(selections)
        # Keys of a type with nothing selected are never asked: they stay None.
        wanted = list(dict.fromkeys(key for key in keys if key.type_name in checked))
        if not wanted:
            return [None] * len(keys)
        size = self._settings.registry_max_representations
        chunks = [wanted[start:start + size] for start in range(0, len(wanted), size)]

        async def fetch() -> list[list[EntityResult]]:
            return await _all([self._entities_chunk(chunk, checked, request_id)
                               for chunk in chunks])

        found = dict(zip(wanted, chain.from_iterable(await self._guarded(fetch, request_id)),
                         strict=True))
        failed = sum(isinstance(value, IdentityUnavailableError) for value in found.values())
        if failed:
            # The call itself succeeded (the breaker counts it so); some entries did not.
            log.warning("registry.entry_errors", entries=failed, request_id=request_id)
        results: list[EntityResult] = []
        for key in keys:
            value = found.get(key)
            if isinstance(value, IdentityUnavailableError):
                # Each position its own instance: a consumer may raise it.
                value = IdentityUnavailableError(value.reason)
            results.append(value)
        return results

    async def ids_by_document(self, number: str, request_id: str) -> list[int]:
        body = {"query": BY_DOCUMENT, "variables": {"number": number}}
        people = await self._guarded(lambda: self._look_up(body, "personsByDocument",
                                                           request_id), request_id)
        return ids_of(people)

    async def ids_by_name(self, text: str, limit: int, request_id: str) -> list[int]:
        """Every matching id in the whole registry (ascending), walked in pages of at most
        NAME_PAGE_SIZE by keyset (`after` = the previous page's last id); each page is one
        request and one guarded, retried call of its own. The walk asks for `limit + 1`
        people in all, so "exactly limit" and "more than limit" differ: only the latter is
        `LookupTooBroadError`, whatever share of the matches the caller may later see."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        ids: list[int] = []
        after: int | None = None
        while True:
            first = min(NAME_PAGE_SIZE, limit + 1 - len(ids))
            body = {"query": BY_NAME, "variables": {
                "text": text, "first": first, "after": None if after is None else str(after)}}
            page = await self._guarded(partial(self._name_page, body, first, after,
                                               request_id), request_id)
            ids.extend(page)
            if len(ids) > limit:
                raise LookupTooBroadError(limit)
            if len(page) < first:
                return ids
            after = page[-1]

    # -- readiness and shutdown --

    async def ping(self) -> str:
        """"up", "down" or "open", for /readyz.

        "open" whenever the circuit is not closed (open, or its pause over and no trial yet):
        then nothing is sent. A ping never takes the half-open trial, and never counts
        towards opening a closed circuit. Why: a probe is `{ __typename }` under a 1 s
        timeout, the traffic is real look-ups under the read timeout. As a trial, a registry
        that answers in 1-3 s would fail every ping-trial and keep the circuit open for the
        traffic it could serve; and a `__typename` that succeeds proves nothing about the
        queries the traffic sends (it touches no data). So the first real call after the
        pause is the trial: the gateway recovers by itself as soon as there is traffic to
        recover for, and /readyz reads "up" again once that call has closed the circuit.

        While closed: one `{ __typename }` request, no retry, at most PING_TIMEOUT_SECONDS.
        Its answer is reused for `registry_status_cache_seconds`, and concurrent callers
        share the one ping in flight: a flood of /readyz is a handful of upstream pings."""
        if self._breaker.state != "closed":
            return "open"
        cached = self._status
        if (cached is not None
                and self._clock() - cached[0] < self._settings.registry_status_cache_seconds):
            return cached[1]
        loop = asyncio.get_running_loop()
        task = self._ping_task
        if task is None or task.done() or self._ping_loop is not loop:
            task = loop.create_task(self._ping_once())
            self._ping_task, self._ping_loop = task, loop
        # Shielded: one impatient caller's cancellation does not cancel the others' answer.
        return await asyncio.shield(task)

    async def _ping_once(self) -> str:
        body = {"query": PING}
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                read_typename(await self._post(body, uuid.uuid4().hex,
                                               httpx.Timeout(PING_TIMEOUT_SECONDS)))
        except (IdentityUnavailableError, MalformedAnswerError, TimeoutError):
            result = "down"
        else:
            result = "up"
        self._status = (self._clock(), result)
        return result

    async def aclose(self) -> None:
        task, self._ping_task, self._ping_loop = self._ping_task, None, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if self._client is not None:
            client, self._client, self._loop = self._client, None, None
            await client.aclose()

    # -- one guarded call: breaker, deadline, retries, translation --

    async def _guarded(self, operation: Callable[[], Awaitable[T]], request_id: str) -> T:
        permit = self._breaker.admit()
        if permit is None:
            metrics.upstream_refused()
            raise IdentityUnavailableError("circuit open")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.registry_total_timeout_seconds):
                result = await operation()
        except (IdentityUnavailableError, MalformedAnswerError, TimeoutError) as exc:
            metrics.upstream_called(ok=False, seconds=time.perf_counter() - started)
            self._breaker.failed(permit)
            reason = _reason(exc)
            log.warning("registry.unavailable", reason=reason, request_id=request_id)
            if type(exc) is IdentityUnavailableError:
                raise
            raise IdentityUnavailableError(reason) from exc
        except BaseException:
            self._breaker.abandoned(permit)
            raise
        metrics.upstream_called(ok=True, seconds=time.perf_counter() - started)
        self._breaker.succeeded(permit)
        return result

    async def _entities_chunk(
        self, chunk: list[EntityKey], checked: dict[str, tuple[str, ...]], request_id: str,
    ) -> list[EntityResult]:
        present = {key.type_name for key in chunk}
        selection = {name: fields for name, fields in checked.items() if name in present}
        body = {"query": entities_document(selection),
                "variables": {"representations": representations(chunk)}}
        return read_entities(await self._post_with_retries(body, request_id), chunk, selection)

    async def _look_up(self, body: dict[str, Any], field: str, request_id: str) -> list[Any]:
        return read_list(await self._post_with_retries(body, request_id), field)

    async def _name_page(self, body: dict[str, Any], first: int, after: int | None,
                         request_id: str) -> list[int]:
        people = await self._look_up(body, "personsByName", request_id)
        if len(people) > first:
            raise MalformedAnswerError("personsByName answered more than asked")
        return page_ids(people, after)

    async def _post_with_retries(self, body: dict[str, Any], request_id: str) -> Any:
        settings = self._settings
        async for attempt in stamina.retry_context(
            on=_RetryableError,
            attempts=settings.registry_attempts,
            timeout=settings.registry_total_timeout_seconds,
            wait_initial=WAIT_INITIAL, wait_max=WAIT_MAX, wait_jitter=WAIT_JITTER,
        ):
            with attempt:
                return await self._post(body, request_id)
        raise AssertionError("stamina re-raises the last failure")  # pragma: no cover

    async def _post(self, body: dict[str, Any], request_id: str,
                    timeout: httpx.Timeout | None = None) -> Any:
        headers = self._headers(request_id)
        if self._tracer is None:
            return await self._exchange(body, headers, timeout)
        with upstream_span(self._tracer, self._host, headers) as span:
            return await self._exchange(body, headers, timeout, span)

    async def _exchange(self, body: dict[str, Any], headers: dict[str, str],
                        timeout: httpx.Timeout | None, span: Span | None = None) -> Any:
        """One HTTP exchange; the only place httpx errors are caught."""
        try:
            response = await self._http().post(
                self.url, content=orjson.dumps(body), headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException as exc:
            raise _RetryableError("registry timed out") from exc
        except httpx.TransportError as exc:
            raise _RetryableError("registry unreachable") from exc
        except httpx.HTTPError as exc:
            raise IdentityUnavailableError("registry request failed") from exc
        status = response.status_code
        if span is not None:
            response_status(span, status)
        if status in RETRIED_STATUSES:
            raise _RetryableError(f"registry answered {status}")
        if not 200 <= status < 300:
            raise IdentityUnavailableError(f"registry answered {status}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise IdentityUnavailableError("registry answered invalid JSON") from exc

    def _circuit_changed(self, state: BreakerState, failures: int) -> None:
        # A ping's answer from before the change says nothing about after it.
        self._status = None
        metrics.circuit_changed(self._counted_state, state)
        self._counted_state = state
        if state == "open":
            log.warning("registry.circuit", state=state, consecutive_failures=failures)
        else:
            log.info("registry.circuit", state=state)

    def _headers(self, request_id: str) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": ACCEPT,
            "x-request-id": (request_id if _SAFE_REQUEST_ID.fullmatch(request_id)
                             else uuid.uuid4().hex),
        }
        if self._settings.registry_token:
            # The gateway's own credential: the caller's token never leaves the gateway.
            headers["authorization"] = f"Bearer {self._settings.registry_token}"
        return headers

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # Pooled connections belong to the loop that opened them: a server started
            # again in another loop (tests run uvicorn in threads) gets a pool of its own.
            self._client, self._loop = self._new_client(), loop
        return self._client

    def _new_client(self) -> httpx.AsyncClient:
        settings = self._settings
        return httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(connect=settings.registry_connect_timeout_seconds,
                                  read=settings.registry_read_timeout_seconds,
                                  write=settings.registry_read_timeout_seconds,
                                  pool=settings.registry_total_timeout_seconds),
            limits=httpx.Limits(max_connections=settings.registry_max_connections,
                                max_keepalive_connections=settings.registry_max_connections),
            # No proxy, netrc or CA settings picked up from the environment: settings.py
            # is the only configuration. No redirects and no cookies: every request is
            # the same stateless, service-authenticated read.
            trust_env=False,
            follow_redirects=False,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )


async def _all(calls: list[Awaitable[T]]) -> list[T]:
    """Concurrent chunks; the first failure cancels the others."""
    if len(calls) == 1:
        return [await calls[0]]
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _reason(exc: BaseException) -> str:
    if isinstance(exc, IdentityUnavailableError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "registry timed out"
    return "registry answered unexpectedly"
