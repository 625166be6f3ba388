"""Types shared by every domain module."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from resolvers.paging import Page
from schema.context import GraphQLContext

Ctx = Info[GraphQLContext, None]


class _NotFetched:
    """A relation its parent did not fetch in advance (None is a fetched "nothing")."""

    def __repr__(self) -> str:
        return "NOT_FETCHED"


NOT_FETCHED: Any = _NotFetched()


def selects(info: Ctx, *path: str) -> bool:
    """Does the query select this path (GraphQL names) below the current field?

    Fragments count; @skip/@include are not evaluated, so the answer may be a harmless
    "yes" for a field the response will not contain."""
    # selected_fields holds the current field itself (once per occurrence in the query).
    return any(_selects(field.selections, path) for field in info.selected_fields)


def _selects(selections: list[Selection], path: tuple[str, ...]) -> bool:
    for selection in selections:
        if not isinstance(selection, SelectedField):
            if _selects(selection.selections, path):
                return True
        elif selection.name == path[0] and (
            len(path) == 1 or _selects(selection.selections, path[1:])
        ):
            return True
    return False


@strawberry.type
class PageInfo:
    end_cursor: str | None
    has_next_page: bool | None

    @classmethod
    def of(cls, page: Page) -> PageInfo:
        return cls(end_cursor=page.end_cursor, has_next_page=page.has_next_page)


@strawberry.type
class CountBucket:
    key: str | None
    count: int | None


def int_id(value: strawberry.ID | str) -> int:
    """A numeric database id from a GraphQL ID; malformed ids are just missing rows."""
    try:
        return int(str(value))
    except ValueError:
        return -1


AGE_BAND_DESCRIPTION = (
    "Age band (under 18, 18-24, …, 65+) as of 1 January of the current year: every band "
    "moves on the same day, never on a birthday, so a change of band dates no one's birth."
)


def age_reference(today: dt.date) -> dt.date:
    """The day ages are computed on, for requests made `today`: 1 January of its year."""
    return dt.date(today.year, 1, 1)


def age_band(birth_date: dt.date | None, as_of: dt.date | None = None) -> str | None:
    """The band of the age on `as_of`, by default 1 January of the current year.

    No linking (SPEC rule 7): an age band computed on the day of the request would flip on
    the person's birthday, and a partner who watches it flip learns the birth date."""
    if birth_date is None:
        return None
    today = as_of or age_reference(dt.date.today())
    age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month,
                                                                        birth_date.day))
    for upper, label in ((24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"),
                         (64, "55-64")):
        if age <= upper:
            return label if age >= 18 else "under 18"
    return "65+"


def enum_value(value: Enum | None) -> Any:
    return None if value is None else value.value
