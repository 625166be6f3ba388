"""No linking (SPEC rule 7), in SQL: where a record lies, no finer than the policy allows.

A role that may not read a record type's link to a person (a report's foreigner, an
activity's subject) gets a `LocationPrecision` for the type (policies/loader.py). Its
statements then never select the record's area codes or geo point: the one location
column they return, `area_code`, is computed in the same statement as the smallest area
enclosing the record — its RT, RW, kelurahan, kecamatan or the city — where at least k
foreigners live; free text that may name the place is returned only where the record's
own area holds k. Nothing finer leaves the database.

"Live" counts current residents who already lived there on the record's day: someone who
moved in later cannot be the person a record concerns, and a reader who sees residents'
`validFrom` could strike them off. So a record's precision only ever gets coarser as
people move, never finer. Each test is an `EXISTS` that stops at the k-th resident
(`LIMIT 1 OFFSET k-1`), a few index probes per record whatever the size of the area.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal, null, select
from sqlalchemy.orm import aliased

from policies.area_codes import LEVELS
from policies.loader import LocationPrecision
from resolvers.models import OfficerActivity, Report, Residence

# Residents counted for a record: their own alias, so no other statement's residence
# (the current residence of a foreigner page) is ever correlated by accident.
_RESIDENT = aliased(Residence, name="k_resident")

_LOCATED = frozenset(f"{level}_code" for level in LEVELS)
# Per type: the model, the column whose day counts as the record's day, its geo point, and
# which column each GraphQL free-text field the policy may name (`place_text`) is.
_TYPES: dict[str, tuple[Any, str, tuple[str, ...], dict[str, str]]] = {
    "Report": (Report, "created_at", (), {"text": "text"}),
    "Activity": (OfficerActivity, "occurred_at", ("latitude", "longitude"), {"notes": "notes"}),
}


class PlaceTextError(ValueError):
    """The policy names a free-text field the data layer cannot withhold."""

    def __init__(self, type_name: str, field_name: str) -> None:
        super().__init__(f"place_text names {type_name}.{field_name}, which has no column")
        self.type_name = type_name
        self.field_name = field_name


def report_select(precision: LocationPrecision | None) -> Select[Any]:
    return located_select("Report", precision)


def activity_select(precision: LocationPrecision | None) -> Select[Any]:
    return located_select("Activity", precision)


@lru_cache(maxsize=64)
def located_select(type_name: str, precision: LocationPrecision | None) -> Select[Any]:
    """Every column of the type's table but its area codes, plus `area_code`: the exact
    smallest area without a precision, else the coarsened one (see the module docstring).
    Built once per (type, precision); callers add their own WHERE and ORDER BY."""
    model, day, point, text_columns = _TYPES[type_name]
    table = model.__table__
    exact = func.coalesce(model.rt_code, model.rw_code, model.kelurahan_code)
    if precision is None:
        plain = [c for c in table.columns if c.name not in _LOCATED]
        return select(*plain, exact.label("area_code"))
    when = getattr(model, day)
    texts = set()
    for field_name in precision.texts:
        if field_name not in text_columns:
            raise PlaceTextError(type_name, field_name)
        texts.add(text_columns[field_name])
    columns: list[ColumnElement[Any]] = []
    for column in table.columns:
        if column.name in _LOCATED:
            continue
        if column.name in point:
            columns.append(null().label(column.name))
        elif column.name in texts:
            shown = _own_area_holds(model, precision.k, when)
            columns.append(case((shown, column), else_=null()).label(column.name))
        else:
            columns.append(column)
    return select(*columns, coarsened_area_code(model, precision.k, when).label("area_code"))


def coarsened_area_code(model: Any, k: int, when: ColumnElement[Any]) -> ColumnElement[Any]:
    """The record's smallest enclosing area that holds k residents, finest level first;
    NULL when not even the city does. A record located above the RT (RT code NULL)
    matches no resident at that level and falls through to the next."""
    whens = [(_holds(model, level, k, when), getattr(model, f"{level}_code"))
             for level in reversed(LEVELS)]
    return case(*whens, else_=null())


def _own_area_holds(model: Any, k: int, when: ColumnElement[Any]) -> ColumnElement[bool]:
    """Does the record's own (smallest) area hold k residents? One EXISTS per record."""
    return case(
        (model.rt_code.is_not(None), _holds(model, "rt", k, when)),
        (model.rw_code.is_not(None), _holds(model, "rw", k, when)),
        else_=_holds(model, "kelurahan", k, when),
    )


def _holds(model: Any, level: str, k: int, when: ColumnElement[Any]) -> ColumnElement[bool]:
    """At least k current residents of the record's area at `level`, living there since
    the record's day or before: the k-th such resident exists."""
    resident_code = getattr(_RESIDENT, f"{level}_code")
    residents = (
        select(literal(1))
        .select_from(_RESIDENT)
        .where(resident_code == getattr(model, f"{level}_code"),
               _RESIDENT.valid_to.is_(None),
               _RESIDENT.valid_from <= when)
        .limit(1)
        .offset(k - 1)
    )
    return residents.exists()
