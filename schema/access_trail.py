"""The access trail, read back: who was sent which recorded fields of which record, when,
and under which stated purpose — field names, never values (SPEC rule 6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from schema.common import Ctx, PageInfo
from schema.cost import PAGE, bounded
from schema.redaction import MAX_TYPE_FIELDS


@strawberry.type(description="One entry of the access trail: a reader was sent these fields "
                             "of one record. Names only, never values.")
class AccessTrailEntry:
    seq: strawberry.ID | None = strawberry.field(
        description="Position in the hash chain (`sisada trail verify`): the reads of one "
                    "request, record type and field set share one chained entry.")
    at: dt.datetime | None
    issuer: str | None
    subject: str | None
    role: str | None
    area: str | None
    officer_id: strawberry.ID | None
    record_type: str | None
    record_id: strawberry.ID | None
    fields: list[str] | None = strawberry.field(metadata=bounded(MAX_TYPE_FIELDS))
    purpose: str | None
    request_id: str | None
    operation_name: str | None
    document_hash: str | None = strawberry.field(
        description="SHA-256 of the GraphQL document that read the fields.")
    client_address: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AccessTrailEntry:
        officer = row["officer_id"]
        return cls(
            seq=strawberry.ID(str(row["seq"])), at=row["at"], issuer=row["issuer"],
            subject=row["subject"], role=row["role"], area=row["area"],
            officer_id=None if officer is None else strawberry.ID(str(officer)),
            record_type=row["record_type"], record_id=strawberry.ID(row["record_id"]),
            fields=list(row["fields"]), purpose=row["purpose"], request_id=row["request_id"],
            operation_name=row["operation_name"], document_hash=row["document_hash"],
            client_address=row["client_address"])


@strawberry.type
class AccessTrailConnection:
    nodes: list[AccessTrailEntry] | None = strawberry.field(metadata=bounded(PAGE))
    page_info: PageInfo | None


@strawberry.input(description="Entries about one foreigner (and their stay permits), by one "
                              "reader, role or purpose, in a time window [since, until).")
class AccessTrailFilter:
    foreigner_id: strawberry.ID | None = None
    subject: str | None = None
    role: str | None = None
    purpose: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


# Which readable field each filter reveals (SPEC rule 5: no filtering by what you cannot read).
TRAIL_FILTER_FIELDS = {
    "foreigner_id": ("AccessTrailEntry", "recordId"),
    "subject": ("AccessTrailEntry", "subject"),
    "role": ("AccessTrailEntry", "role"),
    "purpose": ("AccessTrailEntry", "purpose"),
    "since": ("AccessTrailEntry", "at"),
    "until": ("AccessTrailEntry", "at"),
}


def check_trail_filter(info: Ctx, given: AccessTrailFilter | None) -> None:
    if given is None:
        return
    for name, pair in TRAIL_FILTER_FIELDS.items():
        if getattr(given, name) is not None:
            info.context.require_readable(*pair)
