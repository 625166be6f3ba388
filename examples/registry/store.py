"""Writing and clearing the registry's database: used by `sisada registry migrate`, the
seed (which fills the registry consistently with the office) and the tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from examples.registry.models import PermitDocument, Person, RegistryBase
from resolvers.db import create_engine

# Rows per executemany: bounded memory for any seed size, few round trips.
CHUNK_ROWS = 5000

PERSON_KEYS = ("id", "full_name", "passport_number", "birth_date", "photo_url")
PERMIT_KEYS = ("id", "person_id", "number", "sponsor_name")
NULLABLE_KEYS = frozenset({"photo_url", "sponsor_name"})


class RegistryNotEmptyError(RuntimeError):
    """The registry already holds people: writing would mix two populations."""

    def __init__(self, url: str) -> None:
        super().__init__("the registry database already holds people; delete them first")
        self.url = url


async def migrate_registry(url: str) -> None:
    """Create the registry's tables (idempotent: existing tables are left as they are)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(RegistryBase.metadata.create_all)
    finally:
        await engine.dispose()


async def write_identities(
    url: str,
    persons: Iterable[Mapping[str, Any]],
    permits: Iterable[Mapping[str, Any]],
) -> tuple[int, int]:
    """Insert people and their permit documents in one transaction; returns the counts.

    persons: {"id", "full_name", "passport_number", "birth_date" (date), "photo_url"};
    permits: {"id", "person_id", "number", "sponsor_name"}.
    Raises `RegistryNotEmptyError` if the registry already holds people.
    """
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if await conn.scalar(select(exists().select_from(Person))):
                raise RegistryNotEmptyError(url)
            written_persons = 0
            for chunk in _chunks(persons, PERSON_KEYS):
                await conn.execute(insert(Person), chunk)
                written_persons += len(chunk)
            written_permits = 0
            for chunk in _chunks(permits, PERMIT_KEYS):
                await conn.execute(insert(PermitDocument), chunk)
                written_permits += len(chunk)
            return written_persons, written_permits
    finally:
        await engine.dispose()


async def registry_is_empty(url: str) -> bool:
    engine = create_engine(url)
    try:
        return await _is_empty(engine)
    finally:
        await engine.dispose()


async def delete_identities(url: str) -> None:
    """Remove every person and permit document (for reseeding); the tables stay."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(PermitDocument))
            await conn.execute(delete(Person))
    finally:
        await engine.dispose()


async def _is_empty(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return not await conn.scalar(select(exists().select_from(Person)))


def _chunks(rows: Iterable[Mapping[str, Any]], keys: tuple[str, ...]
            ) -> Iterator[list[dict[str, Any]]]:
    # Only the known keys: an extra key in the caller's dicts must not become a column error.
    # The nullable columns may be left out.
    iterator = iter(rows)
    while chunk := [{key: row[key] if key not in NULLABLE_KEYS else row.get(key)
                     for key in keys} for row in islice(iterator, CHUNK_ROWS)]:
        yield chunk
