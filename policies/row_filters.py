"""Row rules turned into row filters by Oso's data filtering, once per role and level.

`allow(actor, "read", record: Foreigner)` is partially evaluated with the record unknown;
Oso hands the remaining constraints to a data adapter. Ours does not build a query: it
returns a `RowFilter`, a plain description (OR of ANDs of field comparisons) that the
data layer (`resolvers.scopes`) turns into SQLAlchemy conditions. Oso stays in this
package, SQLAlchemy in `resolvers/`.

The evaluation costs about a millisecond, so it runs once per role and area level when
the policy is compiled, never per request: the actor is a *template* whose claims
(area, city, officer id, issuer, subject) are placeholders, and the adapter turns each
placeholder back into a `Claim` that the data layer binds as a SQL parameter per request.

Anything the adapter cannot express exactly (a relation between types, a comparison of
two fields, a computed claim) is a `PolicyError` at start-up, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polar.data.adapter import DataAdapter
from polar.data.filter import DataFilter, Projection

from policies.principal import Principal


class RowFilterError(ValueError):
    """The partially evaluated rule cannot be expressed as a row filter."""


class _Placeholder:
    """Stands for one claim of the template actor while the rules are partially evaluated.

    It may only be compared with a record's field (Polar then leaves the comparison to the
    adapter, holding this object). Any test Polar would have to decide on its own — a claim
    against a constant (`actor.area != "31.74.01"`), two claims, a method on a claim —
    raises, so such a rule refuses to load instead of being decided for the placeholder
    and silently dropped from the SQL.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _refuse(self, *_args: object) -> Any:
        raise RowFilterError(f"a row rule tests actor.{self.name} without a record field")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _refuse
    __bool__ = __len__ = __iter__ = __add__ = _refuse

    def __getattr__(self, attribute: str) -> Any:
        raise RowFilterError(f"a row rule uses actor.{self.name}.{attribute}")

    def __hash__(self) -> int:
        return hash(("claim", self.name))

    def __repr__(self) -> str:
        return f"<claim {self.name}>"


_PLACEHOLDERS: dict[str, Any] = {
    name: _Placeholder(name) for name in ("area", "city", "issuer", "subject", "officer_id")
}
CLAIMS = tuple(_PLACEHOLDERS)

OPERATORS = {"Eq": "eq", "Neq": "neq", "In": "in", "Nin": "nin"}


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim of the principal (`area`, `city`, `officer_id`, `issuer`, `subject`), bound
    per request."""

    name: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """`field <op> value` on one record; `value` is a constant, a tuple or a `Claim`."""

    field: str
    op: str
    value: object


# Rows match if every comparison of any one conjunction holds. `()` matches no row;
# `((),)` matches every row.
RowFilter = tuple[tuple[Comparison, ...], ...]
NO_ROWS: RowFilter = ()
ALL_ROWS: RowFilter = ((),)


def template_principal(role: str, area_level: str | None) -> Principal:
    """An actor of `role` whose jurisdiction is at `area_level`, with placeholder claims."""
    if area_level is None:
        # No jurisdiction: rules that need one must not hold, as for a real caller.
        return Principal(role=role, officer_id=_PLACEHOLDERS["officer_id"],
                         subject=_PLACEHOLDERS["subject"], issuer=_PLACEHOLDERS["issuer"])
    return Principal(role=role, area=_PLACEHOLDERS["area"], area_level=area_level,
                     city=_PLACEHOLDERS["city"], officer_id=_PLACEHOLDERS["officer_id"],
                     subject=_PLACEHOLDERS["subject"], issuer=_PLACEHOLDERS["issuer"])


class RowFilterAdapter(DataAdapter):
    """Oso's data-filtering adapter, answering with a `RowFilter` instead of a query."""

    def build_query(self, filter: DataFilter) -> RowFilter:
        if filter.relations:
            raise RowFilterError("row rules may not follow relations between types")
        conjunctions: list[tuple[Comparison, ...]] = []
        for conjunction in filter.conditions:
            comparisons: list[Comparison] = []
            holds = True
            for condition in conjunction:
                outcome = _comparison(filter.model, condition.left, condition.cmp,
                                      condition.right)
                if outcome is False:
                    holds = False
                    break
                if isinstance(outcome, Comparison):
                    comparisons.append(outcome)
            if holds:
                conjunctions.append(tuple(sorted(set(comparisons), key=repr)))
        return tuple(sorted(set(conjunctions), key=repr))

    def execute_query(self, query: Any) -> Any:
        raise RowFilterError("the policy never fetches records itself")


def _comparison(model: type, left: object, cmp: str, right: object) -> Comparison | bool:
    """One condition as a comparison, or True/False when it compares two constants."""
    if cmp not in OPERATORS:
        raise RowFilterError(f"unsupported comparison {cmp}")
    op = OPERATORS[cmp]
    if isinstance(right, Projection) and not isinstance(left, Projection):
        if op in ("in", "nin"):
            raise RowFilterError("a constant compared with a list field")
        left, right = right, left
    if not isinstance(left, Projection):
        return _constant_outcome(op, left, right)
    if isinstance(right, Projection):
        raise RowFilterError("row rules may not compare two fields")
    if right is None:
        # A claim the caller lacks (no area, no officer id): never holds, never `IS NULL`.
        return False
    if left.source is not model or left.field is None:
        raise RowFilterError("a row rule compares a whole record or another type")
    return Comparison(field=left.field, op=op, value=_value(right))


def _constant_outcome(op: str, left: object, right: object) -> bool:
    if isinstance(left, _Placeholder) or isinstance(right, _Placeholder):
        raise RowFilterError("a row rule tests a claim without a record field")
    if op == "eq":
        return left == right
    if op == "neq":
        return left != right
    members = right if isinstance(right, list | tuple) else ()
    return (left in members) == (op == "in")


def _value(value: object) -> object:
    if isinstance(value, list | tuple):
        if any(isinstance(v, _Placeholder) for v in value):
            raise RowFilterError("a claim inside a list")
        return tuple(value)
    if isinstance(value, _Placeholder):
        return Claim(value.name)
    return value
