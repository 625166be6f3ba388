"""Foreigners and their stay permits."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any

import strawberry

from schema.common import (
    AGE_BAND_DESCRIPTION,
    NOT_FETCHED,
    Ctx,
    PageInfo,
    age_band,
    int_id,
    selects,
)
from schema.cost import AWAITED_FIELD_WEIGHT, COUNT_WEIGHT, PAGE, bounded, weighted
from schema.residences import Residence, prefetch_areas

# Bounds for the cost estimate (schema/cost.py): the seed holds at most 3 permits and 2
# residences a person; a decade of yearly renewals stays within 10.
MAX_PERMITS = 10
MAX_RESIDENCES = 10


@strawberry.enum
class PermitType(Enum):
    KITAS = "KITAS"
    KITAP = "KITAP"
    ITK = "ITK"


@strawberry.enum
class PermitStatus(Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@strawberry.enum
class ForeignerOrder(Enum):
    ID = "ID"
    NAME = "NAME"
    PERMIT_EXPIRES_ON = "PERMIT_EXPIRES_ON"


@strawberry.type
class StayPermit:
    id: strawberry.ID | None
    number: str | None
    permit_type: str | None
    status: str | None
    issued_on: dt.date | None
    expires_on: dt.date | None
    sponsor_type: str | None
    sponsor_name: str | None

    @classmethod
    def from_row(cls, row: Any) -> StayPermit:
        return cls(
            id=strawberry.ID(str(row["id"])),
            number=row["number"],
            permit_type=row["permit_type"],
            status=row["status"],
            issued_on=row["issued_on"],
            expires_on=row["expires_on"],
            sponsor_type=row["sponsor_type"],
            sponsor_name=row["sponsor_name"],
        )


@strawberry.federation.type(keys=["id"])
class Foreigner:
    id: strawberry.ID | None
    full_name: str | None
    passport_number: str | None
    birth_date: dt.date | None
    photo_url: str | None
    permit_number: str | None
    nationality: str | None
    sex: str | None
    age_band: str | None = strawberry.field(description=AGE_BAND_DESCRIPTION)
    permit_type: str | None
    permit_status: str | None
    permit_expires_on: dt.date | None
    sponsor_type: str | None
    residence: Annotated[Residence, strawberry.lazy("schema.residences")] | None = (
        strawberry.field(description="The current residence.")
    )
    db_id: strawberry.Private[int]
    # Set when the list resolver fetched the permits of the whole page (fetch_page_relations).
    prefetched_permits: strawberry.Private[Any] = NOT_FETCHED

    @classmethod
    def from_row(cls, row: Any) -> Foreigner:
        return cls(
            id=strawberry.ID(str(row["id"])),
            db_id=row["id"],
            full_name=row["full_name"],
            passport_number=row["passport_number"],
            birth_date=row["birth_date"],
            photo_url=row["photo_url"],
            permit_number=row["permit_number"],
            nationality=row["nationality"],
            sex=row["sex"],
            age_band=age_band(row["birth_date"]),
            permit_type=row["permit_type"],
            permit_status=row["permit_status"],
            permit_expires_on=row["permit_expires_on"],
            sponsor_type=row["sponsor_type"],
            residence=Residence.from_prefixed_row(row, "residence_"),
        )

    @classmethod
    async def resolve_reference(
        cls, info: Ctx, id: strawberry.ID, **_representation: Any
    ) -> Foreigner | None:
        # Reload under the caller's row scope; fields sent in the representation are ignored.
        return await load_foreigner(info, int_id(id))

    @strawberry.field(description="Every residence, the current one first.",
                      metadata=bounded(MAX_RESIDENCES))
    async def residence_history(
        self, info: Ctx
    ) -> list[Annotated[Residence, strawberry.lazy("schema.residences")]] | None:
        rows = await info.context.loaders.residences.load(self.db_id)
        return [Residence.from_row(r) for r in rows]

    # Not async, but awaits when the page did not fetch the permits: weighed as awaiting.
    @strawberry.field(description="Every stay permit, newest first.",
                      metadata=bounded(MAX_PERMITS, weight=AWAITED_FIELD_WEIGHT))
    def permits(self, info: Ctx) -> list[StayPermit] | None:
        # A plain value when the page fetched it, else an awaitable (graphql-core takes both):
        # an awaited field costs graphql-core ~0.1 ms, a plain one a few microseconds.
        if self.prefetched_permits is not NOT_FETCHED:
            return self.prefetched_permits
        return self._permits(info)  # type: ignore[return-value]

    async def _permits(self, info: Ctx) -> list[StayPermit]:
        rows = await info.context.loaders.permits.load(self.db_id)
        return [StayPermit.from_row(r) for r in rows]


async def fetch_page_relations(info: Ctx, nodes: list[Foreigner]) -> None:
    """Fetch, for a whole page at once, the relations the query selects and the caller may
    read, so every node resolves them without an await of its own. The same DataLoaders,
    the same row scopes and statements as resolving them one by one."""
    context = info.context
    if nodes and context.may_read("Foreigner", "permits") and selects(info, "nodes", "permits"):
        batches = await context.loaders.permits.load_many([node.db_id for node in nodes])
        for node, rows in zip(nodes, batches, strict=True):
            node.prefetched_permits = [StayPermit.from_row(r) for r in rows]
    residences = [node.residence for node in nodes if node.residence is not None]
    if (residences and context.may_read("Foreigner", "residence")
            and context.may_read("Residence", "area")
            and selects(info, "nodes", "residence", "area")):
        await prefetch_areas(info, residences)


async def load_foreigner(info: Ctx, foreigner_id: int | None) -> Foreigner | None:
    if foreigner_id is None:
        return None
    row = await info.context.loaders.foreigner.load(foreigner_id)
    return Foreigner.from_row(row) if row else None


@strawberry.type
class ForeignerConnection:
    nodes: list[Foreigner] | None = strawberry.field(metadata=bounded(PAGE))
    page_info: PageInfo | None
    filters: strawberry.Private[Any]

    @strawberry.field(description="All foreigners matching the filter, in the caller's scope.",
                      metadata=weighted(COUNT_WEIGHT))
    async def total_count(self, info: Ctx) -> int | None:
        from resolvers.queries import foreigner_count

        return await foreigner_count(info.context.db, info.context.scopes["Foreigner"],
                                     self.filters)


@strawberry.type
class ForeignerCheck:
    document_number: str | None
    registered: bool | None
    foreigner: Foreigner | None


@strawberry.input
class ForeignerFilterInput:
    area_code: str | None = None
    nationality: str | None = None
    permit_type: PermitType | None = None
    permit_status: PermitStatus | None = None
    expires_before: dt.date | None = None
    name: str | None = strawberry.field(default=None, description="Part of the name (immigration).")
    document_number: str | None = strawberry.field(
        default=None, description="Passport or permit number (immigration)."
    )
