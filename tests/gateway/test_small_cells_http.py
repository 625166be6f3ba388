"""Public statistics suppress small cells: a tiny office where some kecamatan have
fewer than five foreigners, served over real HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerThread, make_settings, run_async, run_in_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth import mint_dev_token
from resolvers import migrate
from resolvers.models import Residence
from resolvers.seed import seed_database


async def _seed_and_count(url: str) -> Counter[str]:
    engine = create_async_engine(url)
    try:
        await seed_database(engine, foreigners=25)
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(Residence.kecamatan_code).where(Residence.valid_to.is_(None)))
            return Counter(code for (code,) in rows)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def tiny_office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Counter[str]]]:
    tmp: Path = tmp_path_factory.mktemp("tiny")
    url = f"sqlite+aiosqlite:///{tmp / 'tiny.db'}"
    run_in_thread(migrate.upgrade, url)
    counts = run_async(_seed_and_count(url))
    with ServerThread(create_app(make_settings(url, tmp))) as base_url:
        yield base_url, counts


def test_public_counts_below_five_are_null(tiny_office: tuple[str, Counter[str]]) -> None:
    base_url, counts = tiny_office
    assert any(0 < n < 5 for n in counts.values()), "the fixture needs a small cell"
    assert any(n >= 5 for n in counts.values()), "the fixture needs a large cell"
    response = httpx.post(f"{base_url}/graphql",
                          json={"query": "{ areas { code foreignerCount } }"})
    body = response.json()
    for area in body["data"]["areas"]:
        n = counts.get(area["code"], 0)
        assert area["foreignerCount"] == (n if n >= 5 else None), area
    assert body["extensions"]["redacted"] == {"Area": ["foreignerCount"]}


def test_small_cells_are_exact_for_district(tiny_office: tuple[str, Counter[str]]) -> None:
    base_url, counts = tiny_office
    small = next(code for code, n in counts.items() if 0 < n < 5)
    # Same test secret as the server: any settings from make_settings sign alike.
    token = mint_dev_token(make_settings("sqlite://", Path("unused")), "district", area=small)
    response = httpx.post(f"{base_url}/graphql", headers={"authorization": f"Bearer {token}"},
                          json={"query": f'{{ area(code: "{small}") {{ foreignerCount }} }}'})
    assert response.json()["data"]["area"]["foreignerCount"] == counts[small]


def test_suppressed_counts_are_listed_in_band_as_public(
    tiny_office: tuple[str, Counter[str]],
) -> None:
    base_url, _counts = tiny_office
    response = httpx.post(f"{base_url}/graphql",
                          json={"query": "{ areas { code foreignerCount redactedFields } }"})
    areas = response.json()["data"]["areas"]
    assert any(a["foreignerCount"] is None for a in areas)
    for area in areas:
        # Hidden (suppressed), told apart from unknown behind routers that drop extensions.
        assert (area["foreignerCount"] is None) == ("foreignerCount" in area["redactedFields"])
