"""Row scopes named by the policy, turned into SQL conditions.

The policy says *which* scope applies to a role ("all", "jurisdiction", …);
this module says what each scope means for each table. A scope this module
does not know, or a scope that needs a claim the principal lacks, matches no
row: fail closed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.orm import aliased

from policies import Principal
from resolvers.area_codes import AreaCodeError, ancestors, is_area_code, level_of
from resolvers.models import Area, Officer, OfficerActivity, Report, Residence

Condition = ColumnElement[bool]
ScopeBuilder = Callable[[Principal], Condition]


def located_in(model: type, area_code: str | None) -> Condition:
    """Rows of a located table (residence, report, activity) inside an area."""
    if area_code is None:
        return false()
    try:
        level = level_of(area_code)
    except AreaCodeError:
        return false()
    return getattr(model, f"{level}_code") == area_code


# Every statement that returns foreigner rows joins the current residence under this
# alias (resolvers.queries.foreigner_select); foreigner scopes are written against it.
CURRENT_RESIDENCE = aliased(Residence, name="current_residence")


def foreigners_living_in(area_code: str | None) -> Condition:
    """Foreigners whose current residence lies inside an area.

    A condition on the joined current residence rather than a subquery: a keyset page
    walks foreigners by id and probes each one's residence by index, so its cost does not
    grow with the table (PostgreSQL turns an EXISTS into a hash semi-join over every
    residence of the jurisdiction).
    """
    if area_code is None:
        return false()
    return located_in(CURRENT_RESIDENCE, area_code)


def _area_within(area_code: str | None) -> Condition:
    if area_code is None:
        return false()
    return or_(Area.code == area_code, Area.code.like(area_code + ".%"))


def _own_officer(principal: Principal) -> Condition:
    """The caller's own activities, inside the caller's jurisdiction: officer ids are per
    office, so an officer id alone would match an officer of another office."""
    if principal.officer_id is None:
        return false()
    return and_(OfficerActivity.officer_id == principal.officer_id,
                located_in(OfficerActivity, principal.area))


def _officers_serving(principal: Principal) -> Condition:
    """Officers of the office whose area contains the caller's jurisdiction."""
    if principal.area is None or not is_area_code(principal.area):
        return false()
    return Officer.office_area_code.in_(ancestors(principal.area))


def _own_submitted(principal: Principal) -> Condition:
    if principal.subject is None:
        return false()
    return Report.submitted_by == principal.subject


SCOPES: dict[str, dict[str, ScopeBuilder]] = {
    "Foreigner": {
        "all": lambda _p: true(),
        "jurisdiction": lambda p: foreigners_living_in(p.area),
    },
    "Area": {
        "all": lambda _p: true(),
        "jurisdiction": lambda p: _area_within(p.area),
        "kecamatan_level": lambda _p: Area.level == "kecamatan",
    },
    "Report": {
        "all": lambda _p: true(),
        "jurisdiction": lambda p: located_in(Report, p.area),
        "own_submitted": _own_submitted,
    },
    "Activity": {
        "all": lambda _p: true(),
        "jurisdiction": lambda p: located_in(OfficerActivity, p.area),
        "own_officer": _own_officer,
        "joint_in_jurisdiction": lambda p: and_(
            OfficerActivity.joint_operation.is_(True), located_in(OfficerActivity, p.area)
        ),
    },
    "Officer": {
        "all": lambda _p: true(),
        "serving_jurisdiction": _officers_serving,
    },
}


@lru_cache(maxsize=4096)
def scope_condition(type_name: str, scopes: frozenset[str], principal: Principal) -> Condition:
    """The SQL condition for the rows of `type_name` a principal may see.

    Cached per (type, scopes, principal): a jurisdiction's condition is built once and
    reused by every request of every caller with the same claims. The area code is a bound
    parameter, so SQLAlchemy's compiled-statement cache also serves every jurisdiction.
    """
    builders = SCOPES.get(type_name, {})
    conditions = [builders[name](principal) for name in sorted(scopes) if name in builders]
    if not conditions:
        return false()
    return conditions[0] if len(conditions) == 1 else or_(*conditions)


def unknown_scopes(scopes_by_type: dict[str, frozenset[str]]) -> list[tuple[str, str]]:
    """(type, scope) pairs the policy names that this module cannot enforce."""
    return sorted(
        (t, s) for t, names in scopes_by_type.items() for s in names
        if s not in SCOPES.get(t, {})
    )
