"""The registry client at its seam: httpx.MockTransport stands in for the network.

What the registry receives (exactly the selected fields, the service credential, a request
id), how long lists are split, which failures are retried, and how the circuit breaker
opens, fails fast, half-opens and closes. The client against a real registry process is
in test_registry_readiness_http.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import graphql
import httpx
import orjson
import pytest
import stamina
import structlog
from structlog.testing import capture_logs

import gateway.registry.client
from gateway.registry import (
    RegistryClient,
    close_registry,
    registry_from_settings,
    registry_status,
)
from gateway.settings import Settings
from resolvers.identity import (
    PERMIT_DOCUMENT,
    PERSON,
    EntityKey,
    IdentityUnavailableError,
    LookupTooBroadError,
    UnconfiguredRegistry,
)

URL = "http://registry.test/graphql"
TOKEN = "service-credential"
SECRET = "Siti Rahmawati P1234567"  # stands for identity in a body: it must go nowhere
NAME_ONLY = {PERSON: frozenset({"fullName"})}

Handler = Callable[[httpx.Request], Any]


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    # No sleeping between attempts; the configured number of attempts still applies.
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


class Clock:
    """The breaker's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """A MockTransport that records every request and answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(request.content) for request in self.requests]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "registry_url": URL,
        "registry_token": TOKEN,
        "registry_attempts": 3,
        "registry_breaker_failures": 3,
        "registry_breaker_reset_seconds": 10.0,
        "registry_total_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


def client(registry: Registry, clock: Clock | None = None, **overrides: Any) -> RegistryClient:
    return RegistryClient(settings(**overrides), transport=registry.transport,
                          clock=clock or Clock())


def entities_answer(request: httpx.Request) -> httpx.Response:
    """Every representation known: a name for a Person, a number for a PermitDocument."""
    body = orjson.loads(request.content)
    entries = []
    for rep in body["variables"]["representations"]:
        if rep["__typename"] == PERSON:
            entries.append({"fullName": f"Person {rep['id']}"})
        else:
            entries.append({"number": f"KITAS-{rep['id']}"})
    return httpx.Response(200, json={"data": {"_entities": entries}})


def status(code: int) -> Handler:
    return lambda _request: httpx.Response(code, text=f"<html>{SECRET}</html>")


def selected_fields(query: str) -> dict[str, set[str]]:
    """Type condition → fields selected under `_entities`, read from the document sent."""
    document = graphql.parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    (entities,) = operation.selection_set.selections
    assert isinstance(entities, graphql.FieldNode) and entities.name.value == "_entities"
    assert entities.selection_set is not None
    found: dict[str, set[str]] = {}
    for fragment in entities.selection_set.selections:
        assert isinstance(fragment, graphql.InlineFragmentNode)
        assert fragment.type_condition is not None
        found[fragment.type_condition.name.value] = {
            field.name.value for field in fragment.selection_set.selections
            if isinstance(field, graphql.FieldNode)}
    return found


# -- what the registry is asked --


async def test_entities_query_selects_exactly_the_requested_fields() -> None:
    registry = Registry(entities_answer)
    keys = [EntityKey(PERSON, 7), EntityKey(PERMIT_DOCUMENT, 70)]
    selections = {PERSON: frozenset({"fullName"}), PERMIT_DOCUMENT: frozenset({"number"})}

    found = await client(registry).entities(keys, selections, "req-1")

    assert found == [{"fullName": "Person 7"}, {"number": "KITAS-70"}]
    (body,) = registry.bodies()
    assert selected_fields(body["query"]) == {PERSON: {"fullName"}, PERMIT_DOCUMENT: {"number"}}
    assert body["variables"] == {"representations": [{"__typename": PERSON, "id": "7"},
                                                     {"__typename": PERMIT_DOCUMENT, "id": "70"}]}


async def test_a_type_with_an_empty_selection_gets_no_fragment_and_its_keys_are_not_asked(
) -> None:
    registry = Registry(entities_answer)
    keys = [EntityKey(PERMIT_DOCUMENT, 70), EntityKey(PERSON, 7)]
    selections = {PERSON: frozenset({"fullName"}), PERMIT_DOCUMENT: frozenset()}

    found = await client(registry).entities(keys, selections, "req-1")

    assert found == [None, {"fullName": "Person 7"}]
    (body,) = registry.bodies()
    assert selected_fields(body["query"]) == {PERSON: {"fullName"}}
    assert body["variables"]["representations"] == [{"__typename": PERSON, "id": "7"}]


async def test_nothing_selected_sends_nothing() -> None:
    registry = Registry(entities_answer)
    keys = [EntityKey(PERSON, 7)]

    assert await client(registry).entities(keys, {PERSON: frozenset()}, "req-1") == [None]
    assert await client(registry).entities([], NAME_ONLY, "req-1") == []
    assert registry.requests == []


@pytest.mark.parametrize("selections", [
    {PERSON: frozenset({"nationality"})},
    {PERSON: frozenset({"fullName", "__typename"})},
    {"Foreigner": frozenset({"fullName"})},
])
async def test_fields_outside_the_registry_contract_are_refused(
    selections: dict[str, frozenset[str]],
) -> None:
    registry = Registry(entities_answer)
    with pytest.raises(ValueError):
        await client(registry).entities([EntityKey(PERSON, 7)], selections, "req-1")
    assert registry.requests == []


async def test_entities_are_chunked_at_the_limit_and_answered_in_key_order() -> None:
    registry = Registry(entities_answer)
    ids = [9, 3, 8, 3, 1, 7, 2, 6, 9]  # 7 distinct ids, two repeated
    keys = [EntityKey(PERSON, i) for i in ids]

    found = await client(registry, registry_max_representations=3).entities(
        keys, NAME_ONLY, "req-1")

    assert found == [{"fullName": f"Person {i}"} for i in ids]
    sent = [[rep["id"] for rep in body["variables"]["representations"]]
            for body in registry.bodies()]
    assert sorted(len(chunk) for chunk in sent) == [1, 3, 3]
    assert sorted(int(i) for chunk in sent for i in chunk) == sorted(set(ids))


async def test_unknown_ids_are_none_and_entries_with_errors_are_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "data": {"_entities": [{"fullName": "Person 1"}, {"fullName": None}, None]},
            "errors": [{"message": f"cannot read {SECRET}", "path": ["_entities", 1,
                                                                     "fullName"]}],
        })

    monkeypatch.setattr(gateway.registry.client, "log", structlog.get_logger("sisada"))
    registry = Registry(answer)
    registry_client = client(registry)
    keys = [EntityKey(PERSON, 1), EntityKey(PERSON, 2), EntityKey(PERSON, 3)]

    with capture_logs() as logs:
        found = await registry_client.entities(keys, NAME_ONLY, "req-1")

    assert found[0] == {"fullName": "Person 1"}
    assert isinstance(found[1], IdentityUnavailableError)
    assert found[1].reason == "registry could not answer for this record"
    assert SECRET not in repr(found[1])
    assert found[2] is None  # unknown, not unavailable
    assert registry_client.state == "closed"
    assert [entry["event"] for entry in logs] == ["registry.entry_errors"]
    assert SECRET not in repr(logs)


async def test_a_repeated_key_with_an_error_gets_an_instance_per_position() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "data": {"_entities": [None, {"fullName": "Person 2"}]},
            "errors": [{"message": "boom", "path": ["_entities", 0]}],
        })

    keys = [EntityKey(PERSON, 1), EntityKey(PERSON, 2), EntityKey(PERSON, 1)]
    first, second, third = await client(Registry(answer)).entities(keys, NAME_ONLY, "r")
    assert isinstance(first, IdentityUnavailableError)
    assert isinstance(third, IdentityUnavailableError)
    assert first is not third
    assert second == {"fullName": "Person 2"}


@pytest.mark.parametrize("errors", [
    [{"message": "boom"}],
    [{"message": "boom", "path": ["_entities"]}],
    [{"message": "boom", "path": ["_entities", 7]}],
    [{"message": "boom", "path": ["somethingElse", 0]}],
    {"message": "not a list"},
], ids=["no-path", "whole-field", "out-of-range", "other-field", "not-a-list"])
async def test_an_error_naming_no_entry_makes_every_entry_unavailable(errors: Any) -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "data": {"_entities": [{"fullName": "Person 1"}, None]}, "errors": errors})

    keys = [EntityKey(PERSON, 1), EntityKey(PERSON, 2)]
    found = await client(Registry(answer)).entities(keys, NAME_ONLY, "r")
    assert all(isinstance(entry, IdentityUnavailableError) for entry in found)


async def test_an_entry_that_is_not_an_object_is_unavailable() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"_entities": ["Person 1", None]}})

    keys = [EntityKey(PERSON, 1), EntityKey(PERSON, 2)]
    first, second = await client(Registry(answer)).entities(keys, NAME_ONLY, "r")
    assert isinstance(first, IdentityUnavailableError)
    assert second is None


async def test_fields_the_registry_sends_unasked_are_dropped() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"_entities": [
            {"fullName": "Person 1", "passportNumber": "P1234567"}]}})

    found = await client(Registry(answer)).entities([EntityKey(PERSON, 1)], NAME_ONLY, "r")
    assert found == [{"fullName": "Person 1"}]


async def test_headers_carry_the_service_credential_and_the_request_id_only() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        response = entities_answer(request)
        response.headers["set-cookie"] = "session=abc; Path=/"
        return response

    registry = Registry(answer)
    registry_client = client(registry)
    for request_id in ("req-1", "req-2"):
        await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, request_id)

    for request, request_id in zip(registry.requests, ("req-1", "req-2"), strict=True):
        assert request.method == "POST"
        assert str(request.url) == URL
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-request-id"] == request_id
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept"] == "application/graphql-response+json, application/json"
        # httpx's own framing headers, and nothing else: no cookie a registry set, no
        # forwarded header, no caller's credential.
        assert set(request.headers) <= {"host", "accept", "accept-encoding", "connection",
                                        "user-agent", "content-length", "content-type",
                                        "authorization", "x-request-id"}


async def test_a_request_id_unfit_for_a_header_is_replaced() -> None:
    registry = Registry(entities_answer)
    await client(registry).entities([EntityKey(PERSON, 1)], NAME_ONLY, "a b\r\nX-Evil: 1")
    request_id = registry.requests[0].headers["x-request-id"]
    assert request_id.isalnum() and "Evil" not in request_id


async def test_no_authorization_header_without_a_service_credential() -> None:
    registry = Registry(entities_answer)
    await client(registry, registry_token=None).entities([EntityKey(PERSON, 1)], NAME_ONLY, "r")
    assert "authorization" not in registry.requests[0].headers


# -- retries and timeouts --


async def test_a_503_is_retried_then_succeeds() -> None:
    answers = iter([status(503), entities_answer])
    registry = Registry(lambda request: next(answers)(request))

    found = await client(registry).entities([EntityKey(PERSON, 1)], NAME_ONLY, "req-1")

    assert found == [{"fullName": "Person 1"}]
    assert len(registry.requests) == 2


async def test_a_refused_connection_is_retried_then_succeeds() -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return entities_answer(request)

    registry = Registry(answer)
    found = await client(registry).entities([EntityKey(PERSON, 1)], NAME_ONLY, "req-1")
    assert found == [{"fullName": "Person 1"}]
    assert len(registry.requests) == 2


async def test_a_401_is_not_retried() -> None:
    registry = Registry(status(401))
    with pytest.raises(IdentityUnavailableError) as raised:
        await client(registry).entities([EntityKey(PERSON, 1)], NAME_ONLY, "req-1")
    assert raised.value.reason == "registry answered 401"
    assert len(registry.requests) == 1


async def test_gives_up_after_the_configured_attempts() -> None:
    registry = Registry(status(503))
    with pytest.raises(IdentityUnavailableError) as raised:
        await client(registry).ids_by_document("A1234567", "req-1")
    assert raised.value.reason == "registry answered 503"
    assert type(raised.value) is IdentityUnavailableError
    assert len(registry.requests) == 3


async def test_a_read_timeout_is_unavailable_after_its_retries() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    registry = Registry(answer)
    with pytest.raises(IdentityUnavailableError) as raised:
        await client(registry).entities([EntityKey(PERSON, 1)], NAME_ONLY, "req-1")
    assert raised.value.reason == "registry timed out"
    assert len(registry.requests) == 3


async def test_a_slow_registry_is_stopped_at_the_total_deadline() -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return entities_answer(request)

    registry = Registry(answer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(IdentityUnavailableError) as raised:
        await client(registry, registry_total_timeout_seconds=0.2).entities(
            [EntityKey(PERSON, 1)], NAME_ONLY, "req-1")
    assert raised.value.reason == "registry timed out"
    assert loop.time() - started < 1.5


@pytest.mark.parametrize("handler", [
    status(500),
    status(400),
    lambda _r: httpx.Response(200, text=f"not json {SECRET}"),
    lambda _r: httpx.Response(200, json={"data": None, "errors": [{"message": SECRET}]}),
    lambda _r: httpx.Response(200, json={"data": {"_entities": [{"fullName": SECRET}] * 2}}),
    lambda _r: httpx.Response(200, json=[SECRET]),
], ids=["500", "400", "invalid-json", "errors-only", "wrong-length", "not-an-object"])
async def test_unavailable_reasons_and_logs_never_carry_the_answer(
    handler: Handler, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fresh logger: gateway.logging's cached one may predate capture_logs.
    monkeypatch.setattr(gateway.registry.client, "log", structlog.get_logger("sisada"))
    registry = Registry(handler)
    with capture_logs() as logs, pytest.raises(IdentityUnavailableError) as raised:
        await client(registry).entities([EntityKey(PERSON, 1)], NAME_ONLY, "req-1")
    assert raised.value.reason.startswith("registry answered")
    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
    assert logs and SECRET not in repr(logs)


# -- look-ups --


async def test_look_up_by_document_sends_the_number_as_a_variable_and_reads_int_ids() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"personsByDocument": [
            {"id": "12"}, {"id": 13}, {"id": " 14"}, {"id": "1_5"}, {"id": "x"}, {"id": None},
            {"id": True}, "16"]}})

    registry = Registry(answer)
    number = 'A1" } evil { x'
    assert await client(registry).ids_by_document(number, "req-1") == [12, 13]
    (body,) = registry.bodies()
    assert body["variables"] == {"number": number}
    assert number not in body["query"]
    assert "personsByDocument(number: $number) { id }" in body["query"]


class NameRegistry:
    """personsByName over `matches` people (ids 1..matches), paged as the contract says:
    ordered by id, ids above `after`, at most `first`."""

    def __init__(self, matches: int) -> None:
        self.matches = matches

    def __call__(self, request: httpx.Request) -> httpx.Response:
        variables = orjson.loads(request.content)["variables"]
        first, after = variables["first"], variables["after"]
        assert 1 <= first <= 5001
        start = 1 if after is None else int(after) + 1
        people = [{"id": str(i)} for i in range(start, min(self.matches, start + first - 1) + 1)]
        return httpx.Response(200, json={"data": {"personsByName": people}})


def pages(registry: Registry) -> list[tuple[int, str | None]]:
    return [(body["variables"]["first"], body["variables"]["after"])
            for body in registry.bodies()]


async def test_look_up_by_name_pages_through_every_match_up_to_the_limit() -> None:
    registry = Registry(NameRegistry(12_000))
    found = await client(registry).ids_by_name("siti", 20_000, "req-1")

    assert found == list(range(1, 12_001))
    # Pages of 5,000, each its own request, each after the previous page's last id.
    assert pages(registry) == [(5000, None), (5000, "5000"), (5000, "10000")]
    for body in registry.bodies():
        assert body["variables"]["text"] == "siti"
        assert "siti" not in body["query"]
        assert "personsByName(text: $text, first: $first, after: $after) { id }" in body[
            "query"]
    assert {request.headers["x-request-id"] for request in registry.requests} == {"req-1"}


@pytest.mark.parametrize(("limit", "matches", "expected_pages"), [
    (3, 3, [(4, None)]),
    (5000, 5000, [(5000, None), (1, "5000")]),
    (10_000, 10_000, [(5000, None), (5000, "5000"), (1, "10000")]),
    (20_000, 20_000, [(5000, None), (5000, "5000"), (5000, "10000"), (5000, "15000"),
                      (1, "20000")]),
    (0, 0, [(1, None)]),
])
async def test_exactly_the_limit_is_answered_in_full(
    limit: int, matches: int, expected_pages: list[tuple[int, str | None]],
) -> None:
    registry = Registry(NameRegistry(matches))
    assert await client(registry).ids_by_name("a", limit, "r") == list(range(1, matches + 1))
    assert pages(registry) == expected_pages


@pytest.mark.parametrize(("limit", "expected_pages"), [
    (3, [(4, None)]),
    (5000, [(5000, None), (1, "5000")]),
    (20_000, [(5000, None), (5000, "5000"), (5000, "10000"), (5000, "15000"), (1, "20000")]),
    (0, [(1, None)]),
])
async def test_one_more_than_the_limit_is_too_broad(
    limit: int, expected_pages: list[tuple[int, str | None]],
) -> None:
    registry = Registry(NameRegistry(limit + 1))
    registry_client = client(registry)
    with pytest.raises(LookupTooBroadError) as raised:
        await registry_client.ids_by_name("a", limit, "r")
    assert raised.value.limit == limit
    assert pages(registry) == expected_pages
    assert registry_client.state == "closed"


async def test_each_page_is_retried_on_its_own() -> None:
    names = NameRegistry(7000)
    failed: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        # One 503 for the second page, then it answers.
        if orjson.loads(request.content)["variables"]["after"] == "5000" and not failed:
            failed.append(503)
            return httpx.Response(503)
        return names(request)

    registry = Registry(answer)
    assert await client(registry).ids_by_name("a", 20_000, "r") == list(range(1, 7001))
    assert pages(registry) == [(5000, None), (5000, "5000"), (5000, "5000")]


async def test_a_page_that_does_not_follow_the_keyset_is_unavailable() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        variables = orjson.loads(request.content)["variables"]
        if variables["after"] is None:
            people = [{"id": str(i)} for i in range(1, variables["first"] + 1)]
        else:  # ignores `after`: would loop for ever if believed
            people = [{"id": "1"}]
        return httpx.Response(200, json={"data": {"personsByName": people}})

    registry = Registry(answer)
    with pytest.raises(IdentityUnavailableError) as raised:
        await client(registry, registry_attempts=1).ids_by_name("a", 20_000, "r")
    assert raised.value.reason == "registry answered unexpectedly"
    assert len(registry.requests) == 2


@pytest.mark.parametrize("people", [
    [{"id": "2"}, {"id": "1"}],
    [{"id": "1"}, {"id": "x"}],
    [{"id": "1"}] * 5,
], ids=["descending", "not-an-id", "more-than-asked"])
async def test_a_malformed_page_is_unavailable(people: list[dict[str, str]]) -> None:
    registry = Registry(lambda _r: httpx.Response(200, json={"data": {"personsByName": people}}))
    with pytest.raises(IdentityUnavailableError):
        await client(registry, registry_attempts=1).ids_by_name("a", 3, "r")


# -- the circuit breaker --


async def test_the_circuit_opens_after_consecutive_failures_and_then_fails_fast() -> None:
    registry = Registry(status(503))
    registry_client = client(registry, registry_attempts=1)
    for _ in range(3):
        with pytest.raises(IdentityUnavailableError):
            await registry_client.ids_by_document("A1", "req")
    assert registry_client.state == "open"
    asked = len(registry.requests)

    with pytest.raises(IdentityUnavailableError) as raised:
        await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "req")

    assert raised.value.reason == "circuit open"
    assert len(registry.requests) == asked  # the registry was not asked


async def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    answers = iter([status(503)] * 2 + [entities_answer] + [status(503)] * 2)
    registry = Registry(lambda request: next(answers)(request))
    registry_client = client(registry, registry_attempts=1)
    for expected_ok in (False, False, True, False, False):
        if expected_ok:
            await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "req")
        else:
            with pytest.raises(IdentityUnavailableError):
                await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "req")
    assert registry_client.state == "closed"


async def test_the_circuit_half_opens_after_the_pause_and_a_success_closes_it() -> None:
    healthy = False
    registry = Registry(lambda request: entities_answer(request) if healthy
                        else status(503)(request))
    clock = Clock()
    registry_client = client(registry, clock, registry_attempts=1)
    for _ in range(3):
        with pytest.raises(IdentityUnavailableError):
            await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "req")
    assert registry_client.state == "open"

    clock.now += 10.0
    assert registry_client.state == "half_open"
    healthy = True
    found = await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "req")

    assert found == [{"fullName": "Person 1"}]
    assert registry_client.state == "closed"


async def test_a_failed_trial_opens_the_circuit_again() -> None:
    registry = Registry(status(503))
    clock = Clock()
    registry_client = client(registry, clock, registry_attempts=1, registry_breaker_failures=1)
    with pytest.raises(IdentityUnavailableError):
        await registry_client.ids_by_document("A1", "req")
    clock.now += 10.0

    with pytest.raises(IdentityUnavailableError) as raised:
        await registry_client.ids_by_document("A1", "req")
    assert raised.value.reason == "registry answered 503"
    assert registry_client.state == "open"
    clock.now += 9.0
    with pytest.raises(IdentityUnavailableError) as raised:
        await registry_client.ids_by_document("A1", "req")
    assert raised.value.reason == "circuit open"
    assert len(registry.requests) == 2


async def test_only_one_trial_call_while_half_open() -> None:
    release = asyncio.Event()
    healthy = False

    async def answer(request: httpx.Request) -> httpx.Response:
        if not healthy:
            return status(503)(request)
        await release.wait()
        return entities_answer(request)

    registry = Registry(answer)
    clock = Clock()
    registry_client = client(registry, clock, registry_attempts=1, registry_breaker_failures=1)
    with pytest.raises(IdentityUnavailableError):
        await registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "req")
    clock.now += 10.0
    healthy = True

    trial = asyncio.create_task(
        registry_client.entities([EntityKey(PERSON, 1)], NAME_ONLY, "trial"))
    await asyncio.sleep(0.05)
    with pytest.raises(IdentityUnavailableError) as raised:
        await registry_client.entities([EntityKey(PERSON, 2)], NAME_ONLY, "other")
    assert raised.value.reason == "circuit open"
    release.set()

    assert await trial == [{"fullName": "Person 1"}]
    assert registry_client.state == "closed"
    assert len(registry.requests) == 2


# -- readiness, construction, shutdown --


async def test_ping_is_up_when_the_registry_answers() -> None:
    registry = Registry(lambda _r: httpx.Response(200, json={"data": {"__typename": "Query"}}))
    assert await client(registry).ping() == "up"
    (body,) = registry.bodies()
    assert body["query"].endswith("{ __typename }")
    assert registry.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_failed_ping_is_down_and_does_not_open_the_circuit() -> None:
    registry = Registry(status(503))
    registry_client = client(registry, registry_breaker_failures=1,
                             registry_status_cache_seconds=0)
    assert await registry_client.ping() == "down"
    assert await registry_client.ping() == "down"
    assert registry_client.state == "closed"
    assert len(registry.requests) == 2  # no retries for a probe


def typename(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": {"__typename": "Query"}})


async def test_a_ping_is_reused_for_the_cache_time() -> None:
    healthy = True
    registry = Registry(lambda request: typename(request) if healthy else status(503)(request))
    clock = Clock()
    registry_client = client(registry, clock, registry_status_cache_seconds=2.0)

    assert await registry_client.ping() == "up"
    healthy = False
    clock.now += 1.9
    assert await registry_client.ping() == "up"
    assert len(registry.requests) == 1
    clock.now += 0.1
    assert await registry_client.ping() == "down"
    assert len(registry.requests) == 2


async def test_concurrent_pings_share_one_request() -> None:
    release = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return typename(request)

    registry = Registry(answer)
    registry_client = client(registry, registry_status_cache_seconds=0)
    pings = [asyncio.create_task(registry_client.ping()) for _ in range(500)]
    await asyncio.sleep(0.05)
    # One impatient caller gives up: the others still get the shared answer.
    pings[0].cancel()
    release.set()
    answers = await asyncio.gather(*pings[1:])

    assert answers == ["up"] * 499
    assert len(registry.requests) == 1


async def test_ping_reports_an_open_circuit_and_never_takes_the_trial() -> None:
    healthy = False

    def answer(request: httpx.Request) -> httpx.Response:
        return typename(request) if healthy else status(503)(request)

    registry = Registry(answer)
    clock = Clock()
    registry_client = client(registry, clock, registry_attempts=1, registry_breaker_failures=1)
    assert await registry_client.ping() == "down"  # cached from here on, while closed
    with pytest.raises(IdentityUnavailableError):
        await registry_client.ids_by_document("A1", "req")
    asked = len(registry.requests)
    assert await registry_client.ping() == "open"
    assert len(registry.requests) == asked

    clock.now += 10.0
    healthy = True
    assert registry_client.state == "half_open"
    # Half-open: the probe sends nothing and leaves the trial to the traffic.
    assert await registry_client.ping() == "open"
    assert len(registry.requests) == asked
    assert registry_client.state == "half_open"

    # The first real call after the pause is the trial; it closes the circuit.
    registry.handler = lambda _r: httpx.Response(200, json={"data": {"personsByDocument": []}})
    assert await registry_client.ids_by_document("A1", "req") == []
    assert registry_client.state == "closed"
    # The ping answered before the circuit opened ("down") is not reused after it closed.
    registry.handler = typename
    assert await registry_client.ping() == "up"
    assert len(registry.requests) == asked + 2


async def test_closing_the_client_cancels_a_ping_in_flight() -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)
        return typename(request)

    registry_client = client(Registry(answer))
    ping = asyncio.create_task(registry_client.ping())
    await asyncio.sleep(0.05)
    await registry_client.aclose()
    with pytest.raises(asyncio.CancelledError):
        await ping


async def test_without_a_registry_url_identity_is_unavailable_and_not_configured() -> None:
    source = registry_from_settings(Settings(registry_url=None))
    assert isinstance(source, UnconfiguredRegistry)
    assert await registry_status(source) == "not configured"
    await close_registry(source)  # nothing to close, and no error


async def test_the_factory_builds_one_client_that_closes() -> None:
    source = registry_from_settings(settings())
    assert isinstance(source, RegistryClient)
    await close_registry(source)
    await close_registry(source)  # twice is harmless
