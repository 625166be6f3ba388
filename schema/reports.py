"""Community reports: submitted by anyone, followed by receipt code, triaged by immigration."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from schema.areas import Area
from schema.common import Ctx, PageInfo
from schema.cost import PAGE, bounded
from schema.foreigners import Foreigner, load_foreigner
from schema.locations import placed_area, placed_area_code, placed_text
from schema.redaction import redacted_fields_field

if TYPE_CHECKING:
    from schema.activities import Officer


@strawberry.enum
class ReportCategory(Enum):
    OVERSTAY = "overstay"
    ILLEGAL_WORK = "illegal_work"
    SUSPICIOUS_ACTIVITY = "suspicious_activity"
    ADDRESS_CHANGE = "address_change"
    OTHER = "other"


@strawberry.enum
class ReportState(Enum):
    RECEIVED = "received"
    TRIAGED = "triaged"
    INVESTIGATING = "investigating"
    CLOSED = "closed"


@strawberry.type
class Report:
    id: strawberry.ID | None
    receipt_code: str | None
    category: ReportCategory | None
    text: str | None = strawberry.field(resolver=placed_text)
    area_code: str | None = strawberry.field(
        resolver=placed_area_code,
        description="The smallest area the report lies in; for a caller who may not read "
                    "`foreigner`, the smallest enclosing area where enough foreigners live "
                    "(no linking, see the policy's location_k_minimum).",
    )
    status: ReportState | None
    reporter_contact: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    redacted_fields: list[str] | None = redacted_fields_field()
    foreigner_id: strawberry.Private[int | None]
    assigned_officer_id: strawberry.Private[int | None]
    # Area code and free text as the data layer returned them (resolvers/precision.py).
    located_code: strawberry.Private[str | None]
    free_text: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: Any) -> Report:
        return cls(
            id=strawberry.ID(str(row["id"])),
            receipt_code=row["receipt_code"],
            category=row["category"],
            free_text=row["text"],
            located_code=row["area_code"],
            status=row["status"],
            reporter_contact=row["reporter_contact"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            foreigner_id=row["foreigner_id"],
            assigned_officer_id=row["assigned_officer_id"],
        )

    @strawberry.field
    async def area(self, info: Ctx) -> Area | None:
        return await placed_area(info, self.located_code)

    @strawberry.field(description="The foreigner the report is about, if linked.")
    async def foreigner(self, info: Ctx) -> Foreigner | None:
        return await load_foreigner(info, self.foreigner_id)

    @strawberry.field
    async def assigned_officer(
        self, info: Ctx
    ) -> Annotated[Officer, strawberry.lazy("schema.activities")] | None:
        from schema.activities import load_officer

        return await load_officer(info, self.assigned_officer_id)


async def load_report(info: Ctx, report_id: int | None) -> Report | None:
    if report_id is None:
        return None
    row = await info.context.loaders.report.load(report_id)
    return Report.from_row(row) if row else None


@strawberry.type
class ReportConnection:
    nodes: list[Report] | None = strawberry.field(metadata=bounded(PAGE))
    page_info: PageInfo | None


@strawberry.type(description="What anyone holding a receipt code may know about a report.")
class ReportStatus:
    receipt_code: str | None
    status: ReportState | None
    updated_at: dt.datetime | None


@strawberry.type
class ReportReceipt:
    receipt_code: str | None
    status: ReportState | None


@strawberry.input
class SubmitReportInput:
    category: ReportCategory
    text: str
    area_code: str = strawberry.field(description="Kelurahan, RW or RT code where it happens.")
    reporter_contact: str | None = None
    foreigner_id: strawberry.ID | None = None


@strawberry.input
class UpdateReportInput:
    id: strawberry.ID
    status: ReportState | None = None
    assigned_officer_id: strawberry.ID | None = None

