"""Officers and their field activities."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry

from schema.areas import Area
from schema.common import Ctx, PageInfo
from schema.cost import PAGE, bounded
from schema.foreigners import Foreigner, load_foreigner
from schema.locations import placed_area, placed_area_code, placed_text
from schema.redaction import redacted_fields_field
from schema.reports import Report, load_report


@strawberry.enum
class ActivityKind(Enum):
    DOCUMENT_CHECK = "document_check"
    HOME_VISIT = "home_visit"
    REPORT_FOLLOW_UP = "report_follow_up"
    JOINT_OPERATION = "joint_operation"


@strawberry.type
class Officer:
    id: strawberry.ID | None
    name: str | None
    rank: str | None
    unit: str | None
    redacted_fields: list[str] | None = redacted_fields_field()

    @classmethod
    def from_row(cls, row: Any) -> Officer:
        return cls(id=strawberry.ID(str(row["id"])), name=row["name"], rank=row["rank"],
                   unit=row["unit"])


async def load_officer(info: Ctx, officer_id: int | None) -> Officer | None:
    if officer_id is None:
        return None
    row = await info.context.loaders.officer.load(officer_id)
    return Officer.from_row(row) if row else None


@strawberry.type
class Activity:
    id: strawberry.ID | None
    kind: ActivityKind | None
    occurred_at: dt.datetime | None
    area_code: str | None = strawberry.field(
        resolver=placed_area_code,
        description="The smallest area the activity took place in; for a caller who may not "
                    "read `subject`, the smallest enclosing area where enough foreigners live "
                    "(no linking, see the policy's location_k_minimum).",
    )
    latitude: float | None
    longitude: float | None
    notes: str | None = strawberry.field(resolver=placed_text)
    joint_operation: bool | None
    redacted_fields: list[str] | None = redacted_fields_field()
    officer_id: strawberry.Private[int]
    subject_id: strawberry.Private[int | None]
    report_id: strawberry.Private[int | None]
    # Area code and notes as the data layer returned them (resolvers/precision.py).
    located_code: strawberry.Private[str | None]
    free_text: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: Any) -> Activity:
        return cls(
            id=strawberry.ID(str(row["id"])),
            kind=row["kind"],
            occurred_at=row["occurred_at"],
            located_code=row["area_code"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            free_text=row["notes"],
            joint_operation=row["joint_operation"],
            officer_id=row["officer_id"],
            subject_id=row["subject_foreigner_id"],
            report_id=row["report_id"],
        )

    @strawberry.field
    async def area(self, info: Ctx) -> Area | None:
        return await placed_area(info, self.located_code)

    @strawberry.field
    async def officer(self, info: Ctx) -> Officer | None:
        return await load_officer(info, self.officer_id)

    @strawberry.field(description="The foreigner the activity concerned.")
    async def subject(self, info: Ctx) -> Foreigner | None:
        return await load_foreigner(info, self.subject_id)

    @strawberry.field
    async def report(self, info: Ctx) -> Report | None:
        return await load_report(info, self.report_id)


@strawberry.type
class ActivityConnection:
    nodes: list[Activity] | None = strawberry.field(metadata=bounded(PAGE))
    page_info: PageInfo | None


@strawberry.input
class RecordActivityInput:
    kind: ActivityKind
    area_code: str = strawberry.field(description="Kelurahan, RW or RT code where it happened.")
    latitude: float | None = None
    longitude: float | None = None
    subject_foreigner_id: strawberry.ID | None = None
    report_id: strawberry.ID | None = None
    notes: str | None = None
    joint_operation: bool = False
    occurred_at: dt.datetime | None = None
