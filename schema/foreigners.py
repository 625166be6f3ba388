"""Foreigners and their stay permits."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Mapping, Sequence
from enum import Enum
from typing import Annotated, Any

import strawberry

from resolvers.identity import PERMIT_DOCUMENT, PERSON
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
from schema.identity import Unavailable, fetch_identities, wanted_fields
from schema.redaction import redacted_fields_field
from schema.residences import Residence, prefetch_areas
from schema.trail import note_reads

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


# Output enums: each member's value is what the office database stores, so a record built
# from a row carries the stored text and GraphQL serializes it to the member's name.
@strawberry.enum
class Sex(Enum):
    MALE = "M"
    FEMALE = "F"


@strawberry.enum(description=AGE_BAND_DESCRIPTION)
class AgeBand(Enum):
    UNDER_18 = "under 18"
    AGE_18_24 = "18-24"
    AGE_25_34 = "25-34"
    AGE_35_44 = "35-44"
    AGE_45_54 = "45-54"
    AGE_55_64 = "55-64"
    AGE_65_PLUS = "65+"


@strawberry.enum(description="Who sponsors the stay permit (the kind, never the name).")
class SponsorType(Enum):
    COMPANY = "company"
    SPOUSE = "spouse"
    SCHOOL = "school"
    SELF = "self"
    RELIGIOUS = "religious"


@strawberry.enum(description="Orders of the foreigners list. Names live in the central "
                 "registry, not in the office database: there is no order by name.")
class ForeignerOrder(Enum):
    ID = "ID"
    PERMIT_EXPIRES_ON = "PERMIT_EXPIRES_ON"


@strawberry.type
class StayPermit:
    id: strawberry.ID | None
    permit_type: PermitType | None
    status: PermitStatus | None
    issued_on: dt.date | None
    expires_on: dt.date | None
    sponsor_type: SponsorType | None
    redacted_fields: list[str] | None = redacted_fields_field()
    db_id: strawberry.Private[int]
    # The permit document's number and sponsor: from the registry (schema.identity), set
    # when the query selects them and the caller may read them; else null.
    number: str | None = strawberry.field(
        default=None, description="The permit document's number (from the registry).")
    sponsor_name: str | None = strawberry.field(
        default=None, description="The sponsor's name (from the registry).")

    @classmethod
    def from_row(cls, row: Any) -> StayPermit:
        return cls(
            id=strawberry.ID(str(row["id"])),
            db_id=row["id"],
            permit_type=row["permit_type"],
            status=row["status"],
            issued_on=row["issued_on"],
            expires_on=row["expires_on"],
            sponsor_type=row["sponsor_type"],
        )


async def attach_permit_identity(info: Ctx, permits: Sequence[StayPermit],
                                 *path: str, page: bool = False) -> None:
    """The registry's part of these permits, in one upstream batch (schema.identity)."""
    wanted = wanted_fields(info, "StayPermit", *path)
    if not wanted or not permits:
        return
    found = await fetch_identities(info, "StayPermit", wanted,
                                   [{PERMIT_DOCUMENT: p.db_id} for p in permits], page=page)
    for permit, values in zip(permits, found, strict=True):
        _assign(permit, "StayPermit", values)
    note_reads(info, "StayPermit", ((str(p.db_id), v) for p, v in zip(permits, found,
                                                                       strict=True)), page=page)


@strawberry.federation.type(keys=["id"])
class Foreigner:
    id: strawberry.ID
    nationality: str | None
    sex: Sex | None
    age_band: AgeBand | None = strawberry.field(description=AGE_BAND_DESCRIPTION)
    permit_type: PermitType | None
    permit_status: PermitStatus | None
    permit_expires_on: dt.date | None
    sponsor_type: SponsorType | None
    redacted_fields: list[str] | None = redacted_fields_field()
    residence: Annotated[Residence, strawberry.lazy("schema.residences")] | None = (
        strawberry.field(description="The current residence.")
    )
    db_id: strawberry.Private[int]
    # The permit in force (its document number is identity, in the registry).
    permit_id: strawberry.Private[int | None] = None
    # Set when the list resolver fetched the permits of the whole page (fetch_page_relations).
    prefetched_permits: strawberry.Private[Any] = NOT_FETCHED
    # Identity, from the registry (schema.identity): set when the query selects the field
    # and the caller may read it (plain values, so a page of names costs no resolver calls).
    full_name: str | None = strawberry.field(default=None,
                                             description="Full name (from the registry).")
    passport_number: str | None = strawberry.field(
        default=None, description="Passport number (from the registry).")
    birth_date: dt.date | None = strawberry.field(default=None,
                                                  description="Birth date (from the registry).")
    photo_url: str | None = strawberry.field(default=None,
                                             description="Photo (from the registry).")
    permit_number: str | None = strawberry.field(
        default=None, description="Number of the permit in force (from the registry).")

    @classmethod
    def from_row(cls, row: Any) -> Foreigner:
        return cls(
            id=strawberry.ID(str(row["id"])),
            db_id=row["id"],
            permit_id=row["permit_id"],
            nationality=row["nationality"],
            sex=row["sex"],
            age_band=age_band(row["age_base_year"]),
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
        return await load_foreigner(info, int_id(id), with_identity=True)

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
        permits = [StayPermit.from_row(r) for r in rows]
        await attach_permit_identity(info, permits)
        return permits


def _iso_date(value: Any) -> dt.date | None:
    """A registry date (ISO text on the wire); anything else is no date."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


async def attach_identity(info: Ctx, foreigners: Sequence[Foreigner], *path: str,
                          page: bool = False) -> None:
    """The registry's part of these foreigners, in one upstream batch (schema.identity)."""
    pending = begin_identity(info, foreigners, *path, page=page)
    if pending is not None:
        _apply_identity(info, foreigners, await pending, page=page)


def begin_identity(info: Ctx, foreigners: Sequence[Foreigner | Mapping[str, Any]], *path: str,
                   page: bool = False) -> Awaitable[list[dict[str, Any]]] | None:
    """The registry request for these foreigners (records or their rows), not yet awaited;
    None when the query selects no identity field the caller may read."""
    wanted = wanted_fields(info, "Foreigner", *path)
    if not wanted or not foreigners:
        return None
    keys_of = [{PERSON: f["id"], PERMIT_DOCUMENT: f["permit_id"]} if isinstance(f, Mapping)
               else {PERSON: f.db_id, PERMIT_DOCUMENT: f.permit_id} for f in foreigners]
    return fetch_identities(info, "Foreigner", wanted, keys_of, page=page)


def _apply_identity(info: Ctx, foreigners: Sequence[Foreigner],
                    found: list[dict[str, Any]], *, page: bool) -> None:
    for foreigner, values in zip(foreigners, found, strict=True):
        _assign(foreigner, "Foreigner", values)
    note_reads(info, "Foreigner", ((str(f.db_id), v) for f, v in zip(foreigners, found,
                                                                      strict=True)), page=page)


def _assign(record: Any, type_name: str, values: dict[str, Any]) -> None:
    """Set a record's identity attributes (office field names) from the registry's values;
    a registry date arrives as ISO text."""
    for field_name, value in values.items():
        if field_name == "birthDate" and not isinstance(value, Unavailable):
            value = _iso_date(value)
        setattr(record, ATTRIBUTES[type_name][field_name], value)


# Office field (GraphQL name) → attribute, for the identity fields of each type.
ATTRIBUTES = {
    "Foreigner": {"fullName": "full_name", "passportNumber": "passport_number",
                  "birthDate": "birth_date", "photoUrl": "photo_url",
                  "permitNumber": "permit_number"},
    "StayPermit": {"number": "number", "sponsorName": "sponsor_name"},
}


# Nodes built per turn of the event loop while a page's registry request is out.
NODE_SLICE = 50


async def page_nodes(info: Ctx, rows: Sequence[Mapping[str, Any]]) -> list[Foreigner]:
    """A page's nodes, with the relations the query selects (`fetch_page_relations`).

    The page's identity request leaves for the registry before the nodes are built, and
    they are built a slice per turn of the event loop, so the request goes out at once and
    the registry (another process, on another core) answers while this one builds."""
    identity = begin_identity(info, rows, "nodes", page=True)
    if identity is None:
        nodes = [Foreigner.from_row(row) for row in rows]
        await fetch_page_relations(info, nodes)
        return nodes
    pending = asyncio.ensure_future(identity)
    try:
        nodes = []
        for start in range(0, len(rows), NODE_SLICE):
            await asyncio.sleep(0)
            nodes.extend(Foreigner.from_row(row) for row in rows[start:start + NODE_SLICE])
    except BaseException:
        pending.cancel()
        raise
    await fetch_page_relations(info, nodes, pending)
    return nodes


async def fetch_page_relations(info: Ctx, nodes: list[Foreigner],
                               identity: Awaitable[list[dict[str, Any]]] | None = None
                               ) -> None:
    """Fetch, for a whole page at once, the relations the query selects and the caller may
    read, so every node resolves them without an await of its own. The same DataLoaders,
    the same row scopes and statements as resolving them one by one. The page's identity
    request to the registry (`identity`, when already sent) runs while the office's own
    statements do."""
    if not nodes:
        return
    await asyncio.gather(_page_identity(info, nodes, identity), _page_permits(info, nodes),
                         _page_areas(info, nodes))


async def _page_identity(info: Ctx, nodes: list[Foreigner],
                         identity: Awaitable[list[dict[str, Any]]] | None) -> None:
    if identity is None:
        await attach_identity(info, nodes, "nodes", page=True)
    else:
        _apply_identity(info, nodes, await identity, page=True)


async def _page_permits(info: Ctx, nodes: list[Foreigner]) -> None:
    context = info.context
    if not (context.may_read("Foreigner", "permits") and selects(info, "nodes", "permits")):
        return
    batches = await context.loaders.permits.load_many([node.db_id for node in nodes])
    permits: list[StayPermit] = []
    for node, rows in zip(nodes, batches, strict=True):
        node.prefetched_permits = [StayPermit.from_row(r) for r in rows]
        permits.extend(node.prefetched_permits)
    await attach_permit_identity(info, permits, "nodes", "permits", page=True)


async def _page_areas(info: Ctx, nodes: list[Foreigner]) -> None:
    context = info.context
    residences = [node.residence for node in nodes if node.residence is not None]
    if (residences and context.may_read("Foreigner", "residence")
            and context.may_read("Residence", "area")
            and selects(info, "nodes", "residence", "area")):
        await prefetch_areas(info, residences)


async def load_foreigner(info: Ctx, foreigner_id: int | None,
                         with_identity: bool = True) -> Foreigner | None:
    """A foreigner in the caller's scope, with the identity the current field selects below
    it (`with_identity=False` for an existence check, which needs none)."""
    if foreigner_id is None:
        return None
    row = await info.context.loaders.foreigner.load(foreigner_id)
    if not row:
        return None
    foreigner = Foreigner.from_row(row)
    if with_identity:
        await attach_identity(info, [foreigner])
    return foreigner


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
    name: str | None = strawberry.field(
        default=None, description="Part of the name, any case (looked up in the registry).")
    document_number: str | None = strawberry.field(
        default=None, description="Passport or permit number (looked up in the registry)."
    )
