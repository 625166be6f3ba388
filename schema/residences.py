"""Residences: where a foreigner lives, down to the RT."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from schema.common import NOT_FETCHED, Ctx
from schema.cost import AWAITED_FIELD_WEIGHT, weighted
from schema.redaction import redacted_fields_field

if TYPE_CHECKING:
    from schema.areas import Area


_COLUMNS = ("id", "street_address", "latitude", "longitude", "kecamatan_code", "kelurahan_code",
            "rw_code", "rt_code", "valid_from", "valid_to")


@strawberry.type
class Residence:
    id: strawberry.ID | None
    street_address: str | None
    latitude: float | None
    longitude: float | None
    area_code: str | None
    kecamatan_code: str | None
    kelurahan_code: str | None
    rw_code: str | None
    rt_code: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    redacted_fields: list[str] | None = redacted_fields_field()
    # Set when the list resolver fetched the areas of the whole page (prefetch_areas).
    prefetched_area: strawberry.Private[Any] = NOT_FETCHED

    @classmethod
    def from_row(cls, row: Any) -> Residence:
        return cls(
            id=strawberry.ID(str(row["id"])),
            street_address=row["street_address"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            area_code=row["rt_code"] or row["rw_code"] or row["kelurahan_code"],
            kecamatan_code=row["kecamatan_code"],
            kelurahan_code=row["kelurahan_code"],
            rw_code=row["rw_code"],
            rt_code=row["rt_code"],
            valid_from=row["valid_from"],
            valid_to=row["valid_to"],
        )

    @classmethod
    def from_prefixed_row(cls, row: Any, prefix: str) -> Residence | None:
        """The residence joined into another row under `prefix`; None when there is none."""
        if row[f"{prefix}id"] is None:
            return None
        return cls.from_row({key: row[f"{prefix}{key}"] for key in _COLUMNS})

    # Not async, but awaits when the page did not fetch the areas: weighed as awaiting.
    @strawberry.field(description="The smallest area the residence lies in.",
                      metadata=weighted(AWAITED_FIELD_WEIGHT))
    def area(self, info: Ctx) -> Annotated[Area, strawberry.lazy("schema.areas")] | None:
        # A plain value when the page fetched it (see Foreigner.permits), else an awaitable.
        if self.prefetched_area is not NOT_FETCHED:
            return self.prefetched_area
        from schema.areas import load_area

        return load_area(info, self.area_code)  # type: ignore[return-value]


async def prefetch_areas(info: Ctx, residences: list[Residence]) -> None:
    """The areas of many residences in one batch (under the caller's area scope)."""
    from schema.areas import load_areas

    areas = await load_areas(info, [residence.area_code for residence in residences])
    for residence, area in zip(residences, areas, strict=True):
        residence.prefetched_area = area
