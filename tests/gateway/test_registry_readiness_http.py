"""The registry client against the real stand-in registry process, killed and restarted.

A real gateway (uvicorn) over an empty office database reports the registry on /readyz
without ever failing readiness for it, and a flood of /readyz costs the registry a handful
of pings; the client itself reads entities and look-ups (paged name look-ups included) from
the real process, fails with IdentityUnavailableError while it is gone, opens its circuit,
and recovers by itself once the process is back on the same port: the first real call
after the pause is the trial (a ping never is), so /readyz says "open" until traffic comes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina
from conftest import ServerThread, make_settings, run_async, run_in_thread
from registry_process import RegistryProcess

from examples.registry.store import migrate_registry, write_identities
from gateway.app import create_app
from gateway.registry import RegistryClient
from resolvers import migrate
from resolvers.identity import (
    PERMIT_DOCUMENT,
    PERSON,
    EntityKey,
    IdentityUnavailableError,
    LookupTooBroadError,
)

TOKEN = "registry-readiness-credential-" + "q" * 24
RESET_SECONDS = 0.5
PERSONS = [
    {"id": 31, "full_name": "Ana Lucia Ferreira", "passport_number": "PT5510031",
     "birth_date": date(1984, 5, 1), "photo_url": None},
    {"id": 32, "full_name": "Anatoly Petrov", "passport_number": "RU7720032",
     "birth_date": date(1990, 9, 9), "photo_url": None},
    {"id": 33, "full_name": "Lee Min-jun", "passport_number": "KR3330033",
     "birth_date": date(1972, 12, 24), "photo_url": None},
]
PERMITS = [{"id": 301, "person_id": 31, "number": "2C31PT0301", "sponsor_name": "PT Kopi"}]
# More than two pages of 5,000 for one name look-up: the client walks them all.
WALKERS = 12_001
PAGED = [{"id": 100_000 + n, "full_name": f"Paged Walker {n}", "passport_number": f"PW{n:07d}",
          "birth_date": date(1991, 1, 1), "photo_url": None} for n in range(WALKERS)]


@pytest.fixture(autouse=True)
def real_backoff() -> Iterator[None]:
    # Another module may have left stamina in testing mode: here the real waits apply.
    with stamina.set_testing(False):
        yield


@pytest.fixture(scope="module")
def registry_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}"

    async def prepare() -> None:
        await migrate_registry(url)
        await write_identities(url, PERSONS + PAGED, PERMITS)

    run_async(prepare())
    return url


@pytest.fixture(scope="module")
def registry_process(registry_database: str, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[RegistryProcess]:
    record = tmp_path_factory.mktemp("registry-requests") / "requests.jsonl"
    with RegistryProcess(registry_database, TOKEN, record) as process:
        yield process


@pytest.fixture
def registry(registry_process: RegistryProcess) -> RegistryProcess:
    # Tests kill it: each one starts with it running (same port) and an empty record.
    registry_process.start()
    registry_process.clear_requests()
    return registry_process


def registry_settings(registry: RegistryProcess, tmp: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "registry_url": registry.url,
        "registry_token": TOKEN,
        "registry_attempts": 2,
        "registry_breaker_failures": 2,
        "registry_breaker_reset_seconds": RESET_SECONDS,
        "registry_total_timeout_seconds": 3.0,
    }
    values.update(overrides)
    return make_settings(f"sqlite+aiosqlite:///{tmp / 'office.db'}", tmp, **values)


def wait_for(check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# -- /readyz under a running gateway --


def test_readyz_reports_the_registry_without_failing_readiness(
    registry: RegistryProcess, tmp_path: Path,
) -> None:
    settings = registry_settings(registry, tmp_path)
    run_in_thread(migrate.upgrade, settings.database_url)
    with ServerThread(create_app(settings)) as base_url, httpx.Client(timeout=10) as client:

        def readyz() -> dict[str, Any]:
            response = client.get(f"{base_url}/readyz")
            assert response.status_code == 200
            return response.json()

        assert readyz() == {"status": "ok", "database": "up", "registry": "up"}
        (ping,) = [r for r in registry.requests() if "__typename" in (r["query"] or "")]
        assert ping["authorization"] == f"Bearer {TOKEN}"
        assert ping["request_id"]

        registry.kill()
        # The last ping's answer is reused for registry_status_cache_seconds.
        assert wait_for(lambda: readyz()["registry"] == "down", 10)
        down = readyz()
        assert down["status"] == "ok" and down["database"] == "up"

        registry.start()
        # Pings never open the circuit: back up without traffic.
        assert wait_for(lambda: readyz()["registry"] == "up", RESET_SECONDS + 10)


def test_a_flood_of_readyz_costs_the_registry_a_handful_of_pings(
    registry: RegistryProcess, tmp_path: Path,
) -> None:
    settings = registry_settings(registry, tmp_path)
    run_in_thread(migrate.upgrade, settings.database_url)

    async def flood(base_url: str) -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=500)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            responses = await asyncio.gather(
                *(client.get(f"{base_url}/readyz") for _ in range(500)))
        assert {response.status_code for response in responses} == {200}
        return [response.json() for response in responses]

    with ServerThread(create_app(settings)) as base_url:
        answers = run_async(flood(base_url))

    assert {answer["registry"] for answer in answers} == {"up"}
    pings = [r for r in registry.requests() if "__typename" in (r["query"] or "")]
    assert 1 <= len(pings) <= 5, len(pings)


def test_readyz_says_open_until_the_first_real_call_after_the_pause_closes_the_circuit(
    registry: RegistryProcess, tmp_path: Path,
) -> None:
    settings = registry_settings(registry, tmp_path, registry_status_cache_seconds=0.1)
    run_in_thread(migrate.upgrade, settings.database_url)
    app = create_app(settings)
    registry_client = app.state.sisada.registry
    assert isinstance(registry_client, RegistryClient)
    with ServerThread(app) as base_url, httpx.Client(timeout=10) as client:

        def readyz() -> str:
            response = client.get(f"{base_url}/readyz")
            assert response.status_code == 200
            return str(response.json()["registry"])

        assert readyz() == "up"
        registry.kill()
        for _ in range(2):  # real traffic fails: the circuit opens
            with pytest.raises(IdentityUnavailableError):
                run_async(registry_client.ids_by_document("PT5510031", "while-down"))
        assert registry_client.state == "open"
        assert readyz() == "open"

        registry.start()
        time.sleep(RESET_SECONDS + 0.2)
        assert registry_client.state == "half_open"
        registry.clear_requests()
        # No traffic: /readyz sends nothing and leaves the trial to the first real call.
        assert [readyz() for _ in range(5)] == ["open"] * 5
        assert registry.requests() == []

        assert run_async(registry_client.ids_by_document("PT5510031", "the-trial")) == [31]
        assert registry_client.state == "closed"
        assert readyz() == "up"


# -- the client against the real process --


async def test_a_name_look_up_walks_every_page_of_the_real_registry(
    registry: RegistryProcess, tmp_path: Path,
) -> None:
    client = RegistryClient(registry_settings(registry, tmp_path))
    walker_ids = [person["id"] for person in PAGED]
    try:
        assert await client.ids_by_name("paged WALKER", WALKERS, "walk-all") == walker_ids
        assert await client.ids_by_name("paged walker", 20_000, "walk-more") == walker_ids
        with pytest.raises(LookupTooBroadError) as raised:
            await client.ids_by_name("paged walker", WALKERS - 1, "walk-too-broad")
        assert raised.value.limit == WALKERS - 1
    finally:
        await client.aclose()

    def pages(request_id: str) -> list[tuple[int, str | None]]:
        return [(r["variables"]["first"], r["variables"]["after"])
                for r in registry.requests() if r["request_id"] == request_id]

    first_two = [(5000, None), (5000, str(walker_ids[4999]))]
    third_after = str(walker_ids[9999])
    assert pages("walk-all") == [*first_two, (2002, third_after)]
    assert pages("walk-more") == [*first_two, (5000, third_after)]
    assert pages("walk-too-broad") == [*first_two, (2001, third_after)]


async def test_the_client_reads_entities_and_look_ups_from_the_real_registry(
    registry: RegistryProcess, tmp_path: Path,
) -> None:
    client = RegistryClient(registry_settings(registry, tmp_path))
    try:
        keys = [EntityKey(PERSON, 33), EntityKey(PERMIT_DOCUMENT, 301), EntityKey(PERSON, 999),
                EntityKey(PERSON, 31), EntityKey(PERSON, 33)]
        selections = {PERSON: frozenset({"fullName"}), PERMIT_DOCUMENT: frozenset({"number"})}
        found = await client.entities(keys, selections, "entities-request-1")
        assert found == [{"fullName": "Lee Min-jun"}, {"number": "2C31PT0301"}, None,
                         {"fullName": "Ana Lucia Ferreira"}, {"fullName": "Lee Min-jun"}]

        assert await client.ids_by_document("RU7720032", "doc-request-1") == [32]
        assert await client.ids_by_document("2C31PT0301", "doc-request-2") == [31]
        assert await client.ids_by_document("XX0000000", "doc-request-3") == []
        assert await client.ids_by_name("ana", 5, "name-request-1") == [31, 32]
        assert await client.ids_by_name("ana", 2, "name-request-2") == [31, 32]
        with pytest.raises(LookupTooBroadError):
            await client.ids_by_name("ana", 1, "name-request-3")
    finally:
        await client.aclose()

    received = registry.requests()
    assert {r["authorization"] for r in received} == {f"Bearer {TOKEN}"}
    (entities,) = [r for r in received if r["request_id"] == "entities-request-1"]
    assert "fullName" in entities["query"] and "number" in entities["query"]
    for other in ("passportNumber", "birthDate", "photoUrl", "sponsorName"):
        assert other not in entities["query"]
    assert len(entities["variables"]["representations"]) == 4  # 33 asked once


async def test_the_client_fails_while_the_registry_is_gone_and_recovers_by_itself(
    registry: RegistryProcess, tmp_path: Path,
) -> None:
    client = RegistryClient(registry_settings(registry, tmp_path))
    keys = [EntityKey(PERSON, 31)]
    try:
        assert await client.entities(keys, {PERSON: frozenset({"fullName"})}, "before") == [
            {"fullName": "Ana Lucia Ferreira"}]

        registry.kill()
        for _ in range(2):
            with pytest.raises(IdentityUnavailableError) as raised:
                await client.entities(keys, {PERSON: frozenset({"fullName"})}, "while-down")
            assert raised.value.reason == "registry unreachable"
        assert client.state == "open"
        with pytest.raises(IdentityUnavailableError) as raised:
            await client.entities(keys, {PERSON: frozenset({"fullName"})}, "while-open")
        assert raised.value.reason == "circuit open"
        assert await client.ping() == "open"

        registry.start()
        time.sleep(RESET_SECONDS)
        assert client.state == "half_open"
        assert await client.ping() == "open"  # a probe never takes the trial
        assert client.state == "half_open"
        assert await client.entities(keys, {PERSON: frozenset({"fullName"})}, "after") == [
            {"fullName": "Ana Lucia Ferreira"}]
        assert client.state == "closed"
        assert await client.ping() == "up"
    finally:
        await client.aclose()
