"""Row filters from the policy, turned into SQL conditions.

The policy's row rules reach this module as `RowFilter`s (policies.row_filters): an OR
of ANDs of comparisons between a resource field and a constant or a claim of the caller.
This module knows which column each resource field is and binds the claims. A field it
does not know is refused when the policy is loaded (`untranslatable`); a claim the caller
lacks matches no row: fail closed.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import ColumnElement, and_, case, false, func, null, or_, true
from sqlalchemy.orm import aliased

from policies import Principal, RoleAccess
from policies.area_codes import LEVELS, AreaCodeError, level_of
from policies.row_filters import Claim, Comparison, RowFilter
from resolvers.ids import holds_integer
from resolvers.models import (
    AccessTrailEntry,
    Area,
    Foreigner,
    Officer,
    OfficerActivity,
    Report,
    Residence,
)

Condition = ColumnElement[bool]

# Every statement that returns foreigner rows joins the current residence under this
# alias (resolvers.queries.foreigner_select); foreigner row filters are written against it.
CURRENT_RESIDENCE = aliased(Residence, name="current_residence")

# Width of an area code of each level: a code's prefix of that width is its ancestor there.
_CODE_WIDTH = {"city": 5, "kecamatan": 8, "kelurahan": 13, "rw": 16, "rt": 20}


def _located(model: object) -> dict[str, ColumnElement[object]]:
    return {f"{level}_code": getattr(model, f"{level}_code") for level in LEVELS}


# Resource field (policies.resources) → the column it is, per resource type.
COLUMNS: dict[str, dict[str, ColumnElement[object]]] = {
    # A foreigner lies where their current residence lies.
    "Foreigner": {"id": Foreigner.id, **_located(CURRENT_RESIDENCE)},
    "Report": {"id": Report.id, "submitter_issuer": Report.submitter_issuer,
               "submitter_role": Report.submitter_role, "submitted_by": Report.submitted_by,
               **_located(Report)},
    "Activity": {"id": OfficerActivity.id, "officer_id": OfficerActivity.officer_id,
                 "joint_operation": OfficerActivity.joint_operation,
                 **_located(OfficerActivity)},
    "Officer": {"id": Officer.id, "office_area_code": Officer.office_area_code},
    "AccessTrailEntry": {"office_code": AccessTrailEntry.office_code},
    # Area codes are fixed-width per level, so an area's ancestor at a level is the prefix
    # of that width; an area above the level has none (NULL, as in policies.resources).
    "Area": {"code": Area.code, "level": Area.level,
             **{f"{level}_code": case((func.length(Area.code) >= width,
                                      func.substr(Area.code, 1, width)), else_=null())
                for level, width in _CODE_WIDTH.items()}},
}


def untranslatable(type_name: str, row_filter: RowFilter) -> list[str]:
    """Fields of a row filter this module has no column for (the policy names them)."""
    columns = COLUMNS.get(type_name)
    if columns is None:
        return [f"{type_name} (no table)"]
    return sorted({c.field for conj in row_filter for c in conj if c.field not in columns})


@lru_cache(maxsize=4096)
def row_condition(type_name: str, row_filter: RowFilter, principal: Principal) -> Condition:
    """The SQL condition for the rows of `type_name` a principal may see.

    Cached per (type, filter, principal): a jurisdiction's condition is built once and
    reused by every request of every caller with the same claims. Claims are bound
    parameters, so SQLAlchemy's compiled-statement cache serves every jurisdiction.
    """
    columns = COLUMNS.get(type_name, {})
    branches = [_conjunction(columns, conj, principal) for conj in row_filter]
    branches = [b for b in branches if b is not None]
    if not branches:
        return false()
    return branches[0] if len(branches) == 1 else or_(*branches)


def _conjunction(columns: dict[str, ColumnElement[object]], comparisons: tuple[Comparison, ...],
                 principal: Principal) -> Condition | None:
    """All comparisons of one branch, or None when one of them can never hold."""
    parts: list[Condition] = []
    for comparison in comparisons:
        part = _comparison(columns, comparison, principal)
        if part is None:
            return None
        parts.append(part)
    if not parts:
        return true()
    return parts[0] if len(parts) == 1 else and_(*parts)


def _comparison(columns: dict[str, ColumnElement[object]], comparison: Comparison,
                principal: Principal) -> Condition | None:
    column = columns.get(comparison.field)
    value = comparison.value
    if isinstance(value, Claim):
        value = getattr(principal, value.name, None)
    if column is None or value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not holds_integer(value):
        # A number the column cannot hold: no row has it (PostgreSQL would refuse the query).
        return None
    if comparison.op == "eq":
        return column == value
    if comparison.op == "neq":
        return column != value
    if comparison.op == "in":
        return column.in_(value)
    if comparison.op == "nin":
        return column.not_in(value)
    return None


def foreigners_living_in(area_code: str | None) -> Condition:
    """Foreigners whose current residence lies inside an area (a filter argument).

    A condition on the joined current residence rather than a subquery: a keyset page
    walks foreigners by id and probes each one's residence by index, so its cost does not
    grow with the table.
    """
    if area_code is None:
        return false()
    try:
        level = level_of(area_code)
    except AreaCodeError:
        return false()
    return getattr(CURRENT_RESIDENCE, f"{level}_code") == area_code


def untranslatable_fields(access: RoleAccess) -> list[tuple[str, str]]:
    """(type, field) pairs a role's row rules compare that no column answers: such a
    comparison never holds (no rows), and the policy check reports it."""
    return sorted({
        (type_name, name)
        for filters in access.row_filters.values()
        for type_name, row_filter in filters.items()
        for name in untranslatable(type_name, row_filter)
    })
