"""No linking (SPEC rule 7), in SQL: where a record lies, no finer than the policy allows.

A role that may not read a record type's link to a person (a report's foreigner, an
activity's subject) gets a `LocationPrecision` for the type (policies/loader.py). Its
statements then never select the record's area codes or geo point: the one location
column they return, `area_code`, is computed in the same statement, bottom-up by pools
(consistent generalisation), so that every record shown at an area is one of at least k
residents whom nothing a reader can see rules out:

- an RT is shown for the records in it when k residents live there;
- a coarser area A (RW, kelurahan, kecamatan, the city) is shown for the records of A that
  no finer area took, when A's *pool* holds k: the residents of A whose finer areas did not
  resolve on their own — residents of an RT or RW that is shown by itself are left out,
  since a reader who sees an area shown at A knows the record is not in such a sub-area
  (the elimination attack, SECURITY.md no-linking row);
- where not even the city's pool holds k, the location is withheld (NULL).

Records located above the RT (an RW or kelurahan only) take the same pools from their own
level up. Free text that may name the place is returned only where the record's own area is
shown.

Days. Everything is as of the record's day. Which sub-areas resolved on their own (and so
leave the pool) is judged by who lived there on that day, movers-out included (`R`): that
never changes afterwards. Whether an area's pool holds k counts only residents still living
there who moved in on or before the day (`C`, a subset of R): someone who moved in later
cannot be the person, and a reader who sees residents' `validFrom` could strike them off.
As people move out C only shrinks, so a record only ever gets coarser, never finer — with
pools judged on C alone, an RT dropping below k would pour its residents into its RW's pool
and make the other records of the RW finer overnight, which two readings a day apart could
intersect. Leaving an R-resolved sub-area out of a pool only ever under-counts the pool.

Cost: the RT test is an `EXISTS` that stops at the k-th resident (`LIMIT 1 OFFSET k-1`);
each coarser level, reached only when the finer ones failed (`CASE` evaluates lazily), is
one correlated subquery grouping the area's residents by their finer codes (≤ 4 nested
GROUP BYs over the residences of one area).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal, null, or_, select
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
            shown = _own_area_shown(model, precision.k, when)
            columns.append(case((shown, column), else_=null()).label(column.name))
        else:
            columns.append(column)
    return select(*columns, coarsened_area_code(model, precision.k, when).label("area_code"))


def coarsened_area_code(model: Any, k: int, when: ColumnElement[Any]) -> ColumnElement[Any]:
    """The record's smallest enclosing area that is shown for it, finest level first; NULL
    when not even the city's pool holds k. A record located above the RT (RT code NULL)
    matches no resident at that level and falls through to the next."""
    whens = [(_shown(model, level, k, when), getattr(model, f"{level}_code"))
             for level in reversed(LEVELS)]
    return case(*whens, else_=null())


def _own_area_shown(model: Any, k: int, when: ColumnElement[Any]) -> ColumnElement[bool]:
    """Is the record shown at its own (smallest) area? The finer levels do not exist for
    it, so this is that level's test alone."""
    return case(
        (model.rt_code.is_not(None), _shown(model, "rt", k, when)),
        (model.rw_code.is_not(None), _shown(model, "rw", k, when)),
        else_=_shown(model, "kelurahan", k, when),
    )


def _lived_there(when: ColumnElement[Any]) -> list[ColumnElement[bool]]:
    """R: residences that had begun by the record's day and had not ended before it."""
    return [_RESIDENT.valid_from <= when,
            or_(_RESIDENT.valid_to.is_(None), _RESIDENT.valid_to >= when)]


def _shown(model: Any, level: str, k: int, when: ColumnElement[Any]) -> ColumnElement[bool]:
    """Is the record's area at `level` shown for the records its finer areas leave to it?"""
    if level == "rt":
        return _rt_holds(model, k, when)
    return _pool(model, level, k, when) >= k


def _rt_holds(model: Any, k: int, when: ColumnElement[Any]) -> ColumnElement[bool]:
    """At least k current residents of the record's RT, living there since the record's day
    or before: the k-th such resident exists. (An RT's pool is all of it.)"""
    residents = (
        select(literal(1))
        .select_from(_RESIDENT)
        .where(_RESIDENT.rt_code == model.rt_code,
               _RESIDENT.valid_to.is_(None),
               _RESIDENT.valid_from <= when)
        .limit(1)
        .offset(k - 1)
    )
    return residents.exists()


def _pool(model: Any, level: str, k: int, when: ColumnElement[Any]) -> ColumnElement[Any]:
    """The pool of the record's area at `level` (above the RT): its current residents (C)
    who live in no finer area that resolved on its own, judged on the day's residents (R).

    Innermost, the area's residences of the day grouped by every finer code: `r` counts R,
    `c` counts C. Then level by level upwards, the groups of an area that resolved on its
    own (its R-pool holds k) are dropped and the rest summed into their parent; a NULL code
    (a residence located above that level) never resolves there. NULL (no residents)
    compares as not holding."""
    finer = list(LEVELS[LEVELS.index(level) + 1:])  # e.g. kelurahan: ["rw", "rt"]
    codes = [getattr(_RESIDENT, f"{name}_code").label(name) for name in finer]
    current = case((_RESIDENT.valid_to.is_(None), 1), else_=0)
    grouped = (
        select(*codes, func.count().label("r"), func.sum(current).label("c"))
        .where(getattr(_RESIDENT, f"{level}_code") == getattr(model, f"{level}_code"),
               *_lived_there(when))
        .group_by(*codes)
        .correlate(model)
        .subquery()
    )
    for depth in range(len(finer) - 1, 0, -1):  # rt first, up to the level below `level`
        kept = [grouped.c[name] for name in finer[:depth]]
        unresolved = or_(grouped.c[finer[depth]].is_(None), grouped.c.r < k)
        grouped = (
            select(*kept, func.sum(grouped.c.r).label("r"), func.sum(grouped.c.c).label("c"))
            .where(unresolved)
            .group_by(*kept)
            .subquery()
        )
    unresolved = or_(grouped.c[finer[0]].is_(None), grouped.c.r < k)
    return select(func.sum(grouped.c.c)).where(unresolved).scalar_subquery()
