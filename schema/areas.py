"""Areas of the office (city > kecamatan > kelurahan > RW > RT) with foreigner counts.

Counts are SQL aggregates; a count below the caller's cell minimum is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import strawberry

from schema.common import CountBucket, Ctx, area_code_argument
from schema.cost import bounded
from schema.redaction import redacted_fields_field

# Bounds of the area lists for the cost estimate (schema/cost.py), from the area tree of
# one office (Jakarta Selatan: 10 kecamatan, 65 kelurahan, ~600 RW, ~4,500 RT) with room to
# spare. A kelurahan has at most ~20 RW and an RW ~20 RT.
MAX_CHILDREN = 40
MAX_AREAS = 5000  # also the SQL limit of `areas` (resolvers/queries.py)
MAX_AREAS_BY_LEVEL = {"CITY": 1, "KECAMATAN": 20, "KELURAHAN": 100, "RW": 1000, "RT": MAX_AREAS}
# ISO 3166-1 has 249 alpha-3 codes; permit types are an enum of three.
MAX_NATIONALITIES = 250
MAX_PERMIT_TYPES = 3


@strawberry.enum(description="A level of the area tree, from the city down to the RT.")
class AreaLevel(Enum):
    # Values as stored (and as the policy's row rules compare them).
    CITY = "city"
    KECAMATAN = "kecamatan"
    KELURAHAN = "kelurahan"
    RW = "rw"
    RT = "rt"


def max_areas_listed(arguments: Mapping[str, Any]) -> int:
    """The most areas `areas(level, parentCode)` can return for these arguments (GraphQL
    values: a level is its enum name)."""
    if arguments.get("parentCode") is not None:
        return MAX_CHILDREN
    return MAX_AREAS_BY_LEVEL.get(arguments.get("level"), MAX_AREAS)


@strawberry.federation.type(keys=["code"])
class Area:
    code: str  # the entity key: non-null, as partners' references declare it
    name: str | None
    level: AreaLevel | None
    redacted_fields: list[str] | None = redacted_fields_field()
    parent_code: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: Any) -> Area:
        return cls(code=row["code"], name=row["name"], level=row["level"],
                   parent_code=row["parent_code"])

    @classmethod
    async def resolve_reference(cls, info: Ctx, code: str, **_representation: Any) -> Area | None:
        # A code outside the grammar fails this representation alone, not its batch.
        return await load_area(info, area_code_argument(code))

    @strawberry.field
    async def parent(self, info: Ctx) -> Area | None:
        return await load_area(info, self.parent_code)

    @strawberry.field(metadata=bounded(MAX_CHILDREN))
    async def children(self, info: Ctx) -> list[Area] | None:
        rows = await info.context.loaders.area_children.load(self.code)
        return [Area.from_row(r) for r in rows]

    @strawberry.field(description="Foreigners currently living in this area.")
    async def foreigner_count(self, info: Ctx) -> int | None:
        count = await info.context.loaders.foreigner_count.load(self.code)
        return _suppressed(info, count)

    @strawberry.field(description="Foreigners living here, by nationality (ISO 3166 alpha-3).",
                      metadata=bounded(MAX_NATIONALITIES))
    async def by_nationality(self, info: Ctx) -> list[CountBucket] | None:
        return _buckets(info, await info.context.loaders.by_nationality.load(self.code))

    @strawberry.field(description="Foreigners living here, by type of the current stay permit.",
                      metadata=bounded(MAX_PERMIT_TYPES))
    async def by_permit_type(self, info: Ctx) -> list[CountBucket] | None:
        return _buckets(info, await info.context.loaders.by_permit_type.load(self.code))


def _suppressed(info: Ctx, count: int) -> int | None:
    minimum = info.context.access.count_cell_minimum
    if minimum is not None and count < minimum:
        info.context.redacted.add(("Area", "foreignerCount"))
        return None
    return count


def _buckets(info: Ctx, buckets: list[tuple[str, int]]) -> list[CountBucket]:
    return [CountBucket(key=key, count=_suppressed(info, n)) for key, n in buckets]


async def load_area(info: Ctx, code: str | None) -> Area | None:
    if not code:
        return None
    return _area(await info.context.loaders.area.load(code))


async def load_areas(info: Ctx, codes: list[str | None]) -> list[Area | None]:
    rows = await info.context.loaders.area.load_many([code for code in codes if code])
    found = iter(rows)
    return [(_area(next(found)) if code else None) for code in codes]


def _area(row: Any) -> Area | None:
    return Area.from_row(row) if row else None
