"""The registry client against the real stand-in registry process, killed and restarted.

A real gateway (uvicorn) over an empty office database reports the registry on /readyz
without ever failing readiness for it; the client itself reads entities and look-ups from
the real process, fails with IdentityUnavailableError while it is gone, opens its circuit,
and recovers by itself once the process is back on the same port.
"""

from __future__ import annotations

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
        await write_identities(url, PERSONS, PERMITS)

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
        down = readyz()
        assert down["status"] == "ok" and down["database"] == "up"
        assert down["registry"] in {"down", "open"}

        registry.start()
        assert wait_for(lambda: readyz()["registry"] == "up", RESET_SECONDS + 10)


# -- the client against the real process --


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
        assert sorted(await client.ids_by_name("ana", 5, "name-request-1")) == [31, 32]
        with pytest.raises(LookupTooBroadError):
            await client.ids_by_name("ana", 1, "name-request-2")
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
        assert await client.entities(keys, {PERSON: frozenset({"fullName"})}, "after") == [
            {"fullName": "Ana Lucia Ferreira"}]
        assert client.state == "closed"
        assert await client.ping() == "up"
    finally:
        await client.aclose()
