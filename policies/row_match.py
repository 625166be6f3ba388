"""A compiled row filter, evaluated on one record in the process.

Queries apply a role's row filter in SQL (resolvers/scopes.py). A live event is one record
that has already been written; asking the database again for every subscriber would cost a
statement per subscriber per event, so the gateway evaluates the *same* compiled filter on
the event's record here. There is no second rule to keep in step: the filter is the one Oso
produced (policies/row_filters.py), and a test holds this evaluation equal to the SQL on
seeded data for every role, level and type.

The semantics are SQL's, not Python's, wherever they differ:

- a comparison with a claim the caller lacks, or on a field the record does not carry,
  never holds (resolvers/scopes.py drops such a branch);
- a NULL field satisfies no comparison, `!=` and `NOT IN` included (SQL's NULL is
  unknown, and unknown is not true);
- a number no integer column can hold matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.principal import Principal
from policies.row_filters import Claim, Comparison, RowFilter

# The id columns are 32-bit on PostgreSQL (resolvers/ids.py has the same bound).
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_MISSING = object()


def row_matches(row_filter: RowFilter, record: Mapping[str, object], principal: Principal) -> bool:
    """Does `record` (resource field → value, policies/resources.py) pass `row_filter` for
    `principal`? An OR of ANDs; `()` matches nothing, `((),)` everything."""
    return any(_all_hold(conjunction, record, principal) for conjunction in row_filter)


def _all_hold(comparisons: tuple[Comparison, ...], record: Mapping[str, object],
              principal: Principal) -> bool:
    return all(_holds(comparison, record, principal) for comparison in comparisons)


def _holds(comparison: Comparison, record: Mapping[str, object], principal: Principal) -> bool:
    actual = record.get(comparison.field, _MISSING)
    expected = comparison.value
    if isinstance(expected, Claim):
        expected = getattr(principal, expected.name, None)
    if actual is _MISSING or expected is None or actual is None:
        return False
    if _unholdable(expected):
        return False
    if comparison.op == "eq":
        return _same(actual, expected)
    if comparison.op == "neq":
        return not _same(actual, expected)
    if comparison.op in ("in", "nin"):
        members = expected if isinstance(expected, tuple | list | frozenset) else ()
        if comparison.op == "in":
            return any(m is not None and _same(actual, m) for m in members)
        # NOT IN a list holding NULL is never true in SQL.
        return (all(m is not None for m in members)
                and not any(_same(actual, m) for m in members))
    return False


def _unholdable(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and not _INT_MIN <= value <= _INT_MAX)


def _same(actual: object, expected: object) -> bool:
    # A boolean column is never equal to the number 1 in a filter the policy wrote (Polar
    # compares true with true); keep bool and int apart as the SQL types are.
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    return actual == expected
