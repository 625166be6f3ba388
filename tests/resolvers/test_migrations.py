"""The Alembic migrations create exactly the schema the models declare, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import Deployment, run_async
from sqlalchemy.ext.asyncio import create_async_engine

from resolvers.models import Base


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await engine.dispose()


def test_migrated_schema_matches_the_models(deployment: Deployment) -> None:
    assert run_async(_diff(deployment.database_url)) == []
