"""The stand-in central registry, through its real process over HTTP: the wire contract the
gateway relies on (resolvers/identity.py), its credential check and its request record."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry_process import RegistryProcess

from examples.registry import (
    RegistryNotEmptyError,
    delete_identities,
    migrate_registry,
    registry_is_empty,
    write_identities,
)

TOKEN = "registry-test-credential-" + "r" * 24

# Made-up people: ids as the office would know them, documents in upper case.
PERSONS = [
    {"id": 11, "full_name": "Maria Santos Oliveira", "passport_number": "BR4410021",
     "birth_date": date(1987, 3, 14), "photo_url": "https://photos.example/11.jpg"},
    {"id": 12, "full_name": "Kenji Watanabe", "passport_number": "TK0912334",
     "birth_date": date(1979, 11, 2), "photo_url": None},
    {"id": 13, "full_name": "Mariam Haddad", "passport_number": "LB7731209",
     "birth_date": date(1995, 6, 30), "photo_url": None},
    {"id": 14, "full_name": "100% Real_Name Test", "passport_number": "XX0000014",
     "birth_date": date(2000, 1, 1), "photo_url": None},
]
PERMITS = [
    {"id": 201, "person_id": 11, "number": "2C11AB0001", "sponsor_name": "PT Sinar Jaya"},
    {"id": 202, "person_id": 11, "number": "2C11AB0002", "sponsor_name": None},
    {"id": 203, "person_id": 12, "number": "2C11CD0003", "sponsor_name": "CV Maju"},
]
# Enough people that a 1,000-representation request finds every one of them.
BULK = [{"id": 1000 + n, "full_name": f"Synthetic Person {n}", "passport_number": f"SY{n:07d}",
         "birth_date": date(1990, 1, 1), "photo_url": None} for n in range(1000)]

PERSON_FIELDS = "fullName passportNumber birthDate photoUrl"
ENTITIES = (
    "query($r: [_Any!]!) { _entities(representations: $r) { __typename "
    "... on Person { id " + PERSON_FIELDS + " } "
    "... on PermitDocument { id number sponsorName } } }"
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    directory = tmp_path_factory.mktemp("registry")
    url = f"sqlite+aiosqlite:///{directory / 'registry.db'}"

    async def prepare() -> None:
        await migrate_registry(url)
        await migrate_registry(url)  # idempotent
        await write_identities(url, PERSONS + BULK, PERMITS)

    asyncio.run(prepare())
    with RegistryProcess(url, TOKEN, directory / "requests.jsonl") as process:
        yield process


def post(registry: RegistryProcess, query: str, variables: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(registry.url, json={"query": query, "variables": variables},
                      headers=registry.headers() if headers is None else headers, timeout=10)


def data(registry: RegistryProcess, query: str, variables: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    response = post(registry, query, variables)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    body = response.json()
    assert list(body) == ["errors"]
    assert len(body["errors"]) == 1
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert set(body["errors"][0]) == {"message", "extensions"}


def test_request_without_token_is_unauthenticated(registry: RegistryProcess) -> None:
    assert_unauthenticated(post(registry, "{ personsByName(text: \"a\") { id } }", headers={}))


def test_request_with_wrong_token_is_unauthenticated(registry: RegistryProcess) -> None:
    for authorization in (f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}", "Bearer"):
        response = post(registry, "{ personsByName(text: \"a\") { id } }",
                        headers={"Authorization": authorization})
        assert_unauthenticated(response)


def test_healthz_needs_no_token(registry: RegistryProcess) -> None:
    response = httpx.get(registry.url.removesuffix("/graphql") + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_entities_of_both_types_in_order_with_null_for_unknown(registry: RegistryProcess
                                                               ) -> None:
    representations = [
        {"__typename": "PermitDocument", "id": "203"},
        {"__typename": "Person", "id": "12"},
        {"__typename": "Person", "id": "999999"},
        {"__typename": "Person", "id": "11"},
        {"__typename": "Person", "id": "eleven"},
        {"__typename": "PermitDocument", "id": "201"},
        {"__typename": "PermitDocument", "id": "12"},
    ]
    entities = data(registry, ENTITIES, {"r": representations})["_entities"]
    assert entities == [
        {"__typename": "PermitDocument", "id": "203", "number": "2C11CD0003",
         "sponsorName": "CV Maju"},
        {"__typename": "Person", "id": "12", "fullName": "Kenji Watanabe",
         "passportNumber": "TK0912334", "birthDate": "1979-11-02", "photoUrl": None},
        None,
        {"__typename": "Person", "id": "11", "fullName": "Maria Santos Oliveira",
         "passportNumber": "BR4410021", "birthDate": "1987-03-14",
         "photoUrl": "https://photos.example/11.jpg"},
        None,
        {"__typename": "PermitDocument", "id": "201", "number": "2C11AB0001",
         "sponsorName": "PT Sinar Jaya"},
        None,
    ]


def test_entities_answer_only_the_selected_field(registry: RegistryProcess) -> None:
    query = ("query($r: [_Any!]!) { _entities(representations: $r) "
             "{ ... on Person { fullName } } }")
    entities = data(registry, query, {"r": [{"__typename": "Person", "id": "13"}]})["_entities"]
    assert entities == [{"fullName": "Mariam Haddad"}]


def test_thousand_entities_in_one_request(registry: RegistryProcess) -> None:
    query = ("query($r: [_Any!]!) { _entities(representations: $r) "
             "{ ... on Person { id fullName } } }")
    representations = [{"__typename": "Person", "id": str(p["id"])} for p in BULK]
    entities = data(registry, query, {"r": representations})["_entities"]
    assert [e["fullName"] for e in entities] == [p["full_name"] for p in BULK]


def test_more_than_five_thousand_representations_are_refused(registry: RegistryProcess
                                                              ) -> None:
    representations = [{"__typename": "Person", "id": str(n)} for n in range(5001)]
    response = post(registry, ENTITIES, {"r": representations})
    body = response.json()
    assert body["data"] is None
    assert len(body["errors"]) == 1


def test_persons_by_document_finds_passport_holder(registry: RegistryProcess) -> None:
    query = "query($n: String!) { personsByDocument(number: $n) { id fullName } }"
    found = data(registry, query, {"n": " tk0912334 "})["personsByDocument"]
    assert found == [{"id": "12", "fullName": "Kenji Watanabe"}]


def test_persons_by_document_finds_permit_holder(registry: RegistryProcess) -> None:
    query = "query($n: String!) { personsByDocument(number: $n) { id } }"
    assert data(registry, query, {"n": "2c11ab0002"})["personsByDocument"] == [{"id": "11"}]
    assert data(registry, query, {"n": "NO-SUCH-DOC"})["personsByDocument"] == []


def test_persons_by_name_is_case_insensitive_substring(registry: RegistryProcess) -> None:
    query = "query($t: String!) { personsByName(text: $t) { id } }"
    assert data(registry, query, {"t": "MARI"})["personsByName"] == [{"id": "11"}, {"id": "13"}]
    assert data(registry, query, {"t": "watanabe"})["personsByName"] == [{"id": "12"}]


def test_persons_by_name_escapes_like_wildcards(registry: RegistryProcess) -> None:
    query = "query($t: String!) { personsByName(text: $t) { id } }"
    assert data(registry, query, {"t": "100%"})["personsByName"] == [{"id": "14"}]
    assert data(registry, query, {"t": "l_n"})["personsByName"] == [{"id": "14"}]
    assert data(registry, query, {"t": "%"})["personsByName"] == [{"id": "14"}]


def test_persons_by_name_honours_first(registry: RegistryProcess) -> None:
    query = "query($t: String!, $f: Int!) { personsByName(text: $t, first: $f) { id } }"
    found = data(registry, query, {"t": "synthetic person", "f": 3})["personsByName"]
    assert found == [{"id": "1000"}, {"id": "1001"}, {"id": "1002"}]
    response = post(registry, query, {"t": "a", "f": 5002})
    assert len(response.json()["errors"]) == 1


def test_persons_by_name_pages_by_id_after_a_cursor(registry: RegistryProcess) -> None:
    query = ("query($t: String!, $f: Int!, $a: ID) "
             "{ personsByName(text: $t, first: $f, after: $a) { id } }")
    walked: list[int] = []
    after: str | None = None
    sizes: list[int] = []
    while True:
        page = data(registry, query, {"t": "SYNTHETIC person", "f": 400, "a": after})[
            "personsByName"]
        sizes.append(len(page))
        walked += [int(person["id"]) for person in page]
        if len(page) < 400:
            break
        after = page[-1]["id"]
    assert sizes == [400, 400, 200]
    assert walked == [p["id"] for p in BULK]
    # `after` need not be a matching id, and past the last match the page is empty.
    assert data(registry, query, {"t": "mari", "f": 5, "a": "12"})["personsByName"] == [
        {"id": "13"}]
    assert data(registry, query, {"t": "mari", "f": 5, "a": "13"})["personsByName"] == []
    assert data(registry, query, {"t": "mari", "f": 5001, "a": None})["personsByName"] == [
        {"id": "11"}, {"id": "13"}]


@pytest.mark.parametrize("after", ["eleven", "-1", " 12", "1_0"])
def test_persons_by_name_refuses_an_after_that_is_not_an_id(registry: RegistryProcess,
                                                            after: str) -> None:
    query = ("query($a: ID) { personsByName(text: \"mari\", first: 5, after: $a) { id } }")
    body = post(registry, query, {"a": after}).json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_sdl_declares_federation_2_3(registry: RegistryProcess) -> None:
    sdl = data(registry, "{ _service { sdl } }")["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.3"' in sdl
    assert 'type Person @key(fields: "id")' in sdl
    assert 'type PermitDocument @key(fields: "id")' in sdl


def test_record_holds_exact_authorization_and_request_id(registry: RegistryProcess) -> None:
    registry.clear_requests()
    query = "query Holder($n: String!) { personsByDocument(number: $n) { id } }"
    headers = {**registry.headers(), "X-Request-ID": "req-7f3a"}
    httpx.post(registry.url, headers=headers,
               json={"query": query, "variables": {"n": "BR4410021"},
                     "operationName": "Holder"})
    post(registry, "{ _service { sdl } }", headers={"Authorization": "Bearer wrong"})
    first, second = registry.requests()
    assert first["authorization"] == f"Bearer {TOKEN}"
    assert first["request_id"] == "req-7f3a"
    assert (first["query"], first["variables"], first["operation_name"]) == (
        query, {"n": "BR4410021"}, "Holder")
    assert first["refused"] is False
    assert second["authorization"] == "Bearer wrong"
    assert second["request_id"] is None
    # Refused before its body was read: nothing of it is kept.
    assert second["refused"] is True
    assert (second["query"], second["variables"], second["operation_name"]) == (
        None, None, None)


def test_an_unauthenticated_body_is_neither_read_nor_recorded(registry: RegistryProcess
                                                               ) -> None:
    registry.clear_requests()
    secret_query = "{ personsByName(text: \"Kenji Watanabe TK0912334\") { id } }"
    padding = " " * (1024 * 1024)  # a large body, under the 2 MB limit
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(registry.url, headers={**headers, "X-Request-ID": "anon-1"},
                              json={"query": secret_query + padding,
                                    "variables": {"n": "TK0912334"}}, timeout=10)
        assert_unauthenticated(response)
    records = registry.requests()
    assert len(records) == 2
    for record in records:
        assert record["refused"] is True
        assert record["query"] is None and record["variables"] is None
        assert record["request_id"] == "anon-1"
    assert registry.record_path.stat().st_size < 1000
    assert "TK0912334" not in registry.record_path.read_text(encoding="utf-8")


def test_oversized_body_is_refused(registry: RegistryProcess) -> None:
    response = httpx.post(registry.url, headers=registry.headers(),
                          content=b'{"query": "' + b" " * (3 * 1024 * 1024) + b'"}')
    assert response.status_code == 413
    assert registry.requests()[-1]["refused"] is True


def test_registry_answers_again_after_kill_and_start(registry: RegistryProcess) -> None:
    port = registry.port
    registry.kill()
    with pytest.raises(httpx.TransportError):
        httpx.get(registry.url.removesuffix("/graphql") + "/healthz", timeout=1)
    registry.start()
    assert registry.port == port
    assert data(registry, "{ personsByName(text: \"kenji\") { id } }") == {
        "personsByName": [{"id": "12"}]}


def test_store_refuses_writing_over_people_and_deletes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"

    async def scenario() -> None:
        await migrate_registry(url)
        assert await registry_is_empty(url)
        assert await write_identities(url, PERSONS, PERMITS) == (len(PERSONS), len(PERMITS))
        assert not await registry_is_empty(url)
        with pytest.raises(RegistryNotEmptyError):
            await write_identities(url, PERSONS, [])
        await delete_identities(url)
        assert await registry_is_empty(url)

    asyncio.run(scenario())


def test_the_registry_logs_json_lines_as_the_gateway_does(tmp_path: Path) -> None:
    """`SISADA_LOG_FORMAT=json` turns the stand-in's own and uvicorn's lines into the
    gateway's JSON lines, so one stream (the demo's terminal, compose's logs) parses."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    with RegistryProcess(url, TOKEN, tmp_path / "requests.jsonl",
                         env={"SISADA_LOG_FORMAT": "json", "SISADA_LOG_LEVEL": "info"}
                         ) as registry:
        # A local process claiming to forward for someone is not believed (no proxy fronts
        # the registry): the line names the peer, not the claimed text.
        answer = httpx.post(registry.url, json={"query": "{ _service { sdl } }"},
                            headers={**registry.headers(),
                                     "x-forwarded-for": "Zhang Chen E58383307"}, timeout=10)
        assert answer.status_code == 200
        deadline = time.monotonic() + 5
        while '"POST"' not in registry.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = registry.stderr_text(limit=100_000).splitlines()
    parsed = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    access = [line for line in parsed if line.get("logger") == "uvicorn.access"]
    # The start-up wait's GET /healthz, then the query.
    assert [(line["method"], line["path"], line["status"]) for line in access][-1:] == [
        ("POST", "/graphql", 200)]
    assert {line["path"] for line in access} <= {"/healthz", "/graphql"}
    assert access[-1]["event"].startswith("127.0.0.1:")
    assert "E58383307" not in "\n".join(lines)
    assert any(line["logger"] == "uvicorn.error" and line["level"] == "info"
               for line in parsed)
    assert all("timestamp" in line and "level" in line for line in parsed)
