"""A compiled row filter, said in words an auditor reads without knowing the SQL.

The words are rendered from the `RowFilter` the gateway actually enforces (OR of ANDs of
field comparisons, policies/row_filters.py), never written beside it: a rule edited in a
`.polar` file changes the sentence. Comparisons the phrase table does not know are still
rendered, literally (`field = value`), so nothing the filter does is ever left unsaid.
"""

from __future__ import annotations

from policies.area_codes import LEVELS
from policies.row_filters import ALL_ROWS, NO_ROWS, Claim, Comparison, RowFilter

# Where a record of a type lies, as the resource classes define it (policies/resources.py:
# a foreigner lies where their current residence lies).
_PLACE = {"Foreigner": "current residence", "Area": "area"}
_LOCATED = {f"{level}_code": level for level in LEVELS}
# The submitter of a report is three fields: a subject is unique only within its issuer,
# and one person acting in two roles is two submitters (reports.polar).
_SUBMITTER = ("submitter_issuer", "submitter_role", "submitted_by")
_SYMBOLS = {"eq": "=", "neq": "≠", "in": "in", "nin": "not in"}


def scope_in_words(row_filter: RowFilter, type_name: str, role: str,
                   level: str | None) -> str:
    """The rows of `type_name` a caller of `role` whose area is at `level` may read."""
    if row_filter == NO_ROWS:
        return "no rows"
    if row_filter == ALL_ROWS:
        return "every row"
    alternatives = [_conjunction(c, type_name, role, level) for c in row_filter]
    return "; or ".join(alternatives)


def _conjunction(comparisons: tuple[Comparison, ...], type_name: str, role: str,
                 level: str | None) -> str:
    if not comparisons:
        return "every row"
    remaining = list(comparisons)
    phrases: list[str] = []
    submitter = _submitter_phrase(remaining, role)
    if submitter:
        phrases.append(submitter)
    # The place first: it is what tells one jurisdiction from another.
    remaining.sort(key=lambda c: (c.field not in _LOCATED, c.field))
    phrases.extend(_phrase(c, type_name, level) for c in remaining)
    return " and ".join(phrases)


def _submitter_phrase(remaining: list[Comparison], role: str) -> str | None:
    """The three submitter comparisons as one phrase, taken out of `remaining`."""
    found = {c.field: c for c in remaining if c.field in _SUBMITTER and c.op == "eq"}
    if set(found) != set(_SUBMITTER):
        return None
    issuer = found["submitter_issuer"].value
    by = found["submitted_by"].value
    as_role = found["submitter_role"].value
    if issuer != Claim("issuer") or by != Claim("subject"):
        return None
    for comparison in found.values():
        remaining.remove(comparison)
    if as_role == role:
        return "submitted by the caller (same issuer, role and subject)"
    return f"submitted by the caller's issuer and subject acting as {_value(as_role, None)}"


def _phrase(comparison: Comparison, type_name: str, level: str | None) -> str:
    field, op, value = comparison.field, comparison.op, comparison.value
    if field in _LOCATED and op == "eq" and value == Claim("area"):
        place = _PLACE.get(type_name, "located")
        return f"{place} in the caller's {level or 'area'}"
    if field == "officer_id" and op == "eq" and value == Claim("officer_id"):
        return "recorded by the caller (the token's officer)"
    if field == "office_area_code" and op == "eq" and value == Claim("city"):
        return "of the office serving the caller's city"
    if field == "joint_operation" and op == "eq" and value is True:
        return "a joint operation"
    if field == "level" and op == "eq" and isinstance(value, str):
        return f"at {value} level"
    return f"{field} {_SYMBOLS.get(op, op)} {_value(value, level)}"


def _value(value: object, level: str | None) -> str:
    if isinstance(value, Claim):
        if value.name == "area":
            return f"the caller's {level or 'area'}"
        return f"the caller's {value.name.replace('_', ' ')}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_value(v, level) for v in value) + ")"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
