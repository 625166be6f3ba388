"""Foreigners and their stay permits."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any

import strawberry

from schema.common import Ctx, PageInfo, age_band, int_id
from schema.residences import Residence


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
    age_band: str | None
    permit_type: str | None
    permit_status: str | None
    permit_expires_on: dt.date | None
    sponsor_type: str | None
    residence: Annotated[Residence, strawberry.lazy("schema.residences")] | None = (
        strawberry.field(description="The current residence.")
    )
    db_id: strawberry.Private[int]

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

    @strawberry.field(description="Every residence, the current one first.")
    async def residence_history(
        self, info: Ctx
    ) -> list[Annotated[Residence, strawberry.lazy("schema.residences")]] | None:
        rows = await info.context.loaders.residences.load(self.db_id)
        return [Residence.from_row(r) for r in rows]

    @strawberry.field(description="Every stay permit, newest first.")
    async def permits(self, info: Ctx) -> list[StayPermit] | None:
        rows = await info.context.loaders.permits.load(self.db_id)
        return [StayPermit.from_row(r) for r in rows]


async def load_foreigner(info: Ctx, foreigner_id: int | None) -> Foreigner | None:
    if foreigner_id is None:
        return None
    row = await info.context.loaders.foreigner.load(foreigner_id)
    return Foreigner.from_row(row) if row else None


@strawberry.type
class ForeignerConnection:
    nodes: list[Foreigner] | None
    page_info: PageInfo | None
    filters: strawberry.Private[Any]

    @strawberry.field(description="All foreigners matching the filter, in the caller's scope.")
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
