"""Types shared by every domain module."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import Enum
from typing import Any

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from policies.area_codes import AreaCodeError, normalized_area_code
from resolvers.ids import row_id
from resolvers.paging import CursorError, CursorSeal, Page
from schema.context import GraphQLContext
from schema.errors import BadInputError

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


# Plumbing types carry the `Sisada` prefix so that a partner's own `PageInfo` composes
# beside them in a supergraph (README, "Compose it into your supergraph"); `@shareable`
# because they hold no data of their own, so any subgraph that returns them may resolve them.
@strawberry.federation.type(name="SisadaPageInfo", shareable=True)
class PageInfo:
    has_next_page: bool | None
    # The sort key of the last row, sealed only when the response carries it (below).
    plain_end_cursor: strawberry.Private[str | None]

    @classmethod
    def of(cls, page: Page) -> PageInfo:
        return cls(plain_end_cursor=page.end_cursor, has_next_page=page.has_next_page)

    @strawberry.field(description="Where the next page starts: opaque, pass it as `after`.")
    def end_cursor(self, info: Ctx) -> str | None:
        # Sealed: opaque, so no cursor carries a value the caller could read off it.
        if self.plain_end_cursor is None:
            return None
        return cursor_seal(info).seal(self.plain_end_cursor)


def cursor_seal(info: Ctx) -> CursorSeal:
    """The schema's cursor key (build_schema); a schema without one cannot page."""
    seal = getattr(info.schema, "cursor_seal", None)
    if not isinstance(seal, CursorSeal):
        raise TypeError("the schema has no cursor seal")
    return seal


def opened_cursor(info: Ctx, after: str | None) -> str | None:
    """The plain cursor inside a sealed `after`; a cursor we did not seal is bad input."""
    if after is None:
        return None
    try:
        return cursor_seal(info).open(after)
    except CursorError as exc:
        raise BadInputError("invalid cursor") from exc


@strawberry.federation.type(name="SisadaCountBucket", shareable=True)
class CountBucket:
    key: str | None
    count: int | None


def int_id(value: strawberry.ID | str | int) -> int | None:
    """The database id a GraphQL ID names, or None: an id that is not a decimal number the
    id column can hold (negative, huge, `"x1"`, `" 7"`) names no row, just like a missing one."""
    return row_id(value if isinstance(value, int) else str(value))


def area_code_argument(value: object, name: str = "code") -> str:
    """An area code argument, NFKC-normalised; anything else is the caller's error."""
    if not isinstance(value, str):
        raise BadInputError(f"{name} is not an area code")
    try:
        return normalized_area_code(value)
    except AreaCodeError as exc:
        raise BadInputError(f"{name} is not an area code") from exc


# Passport and permit numbers: ASCII letters and digits, hyphens inside, 3 to 32 long.
_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9-]{1,30}[A-Z0-9]")


def document_number_argument(value: str, name: str = "documentNumber") -> str:
    """A passport or permit number as stored: NFKC-normalised (fullwidth letters and digits
    are ASCII ones), trimmed, upper case. Anything else is the caller's error, and the
    message never repeats the value."""
    number = unicodedata.normalize("NFKC", value).strip().upper()
    if not _DOCUMENT_NUMBER.fullmatch(number):
        raise BadInputError(f"{name} must be 3 to 32 letters, digits or inner hyphens")
    return number


AGE_BAND_DESCRIPTION = (
    "Age band (under 18, 18-24, …, 65+) as of 1 January of the current year: every band "
    "moves on the same day, never on a birthday, so a change of band dates no one's birth."
)


def age_reference(today: dt.date) -> dt.date:
    """The day ages are computed on, for requests made `today`: 1 January of its year."""
    return dt.date(today.year, 1, 1)


def age_band(base_year: int | None, year: int | None = None) -> str | None:
    """The band of the age on 1 January of `year` (default: this year), from the office's
    `age_base_year` (the age on 1 January of year Y is Y - base_year).

    No linking (SPEC rule 7): an age band computed on the day of the request would flip on
    the person's birthday, and a partner who watches it flip learns the birth date."""
    if base_year is None:
        return None
    age = (year or age_reference(dt.date.today()).year) - base_year
    for upper, label in ((24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"),
                         (64, "55-64")):
        if age <= upper:
            return label if age >= 18 else "under 18"
    return "65+"


def enum_value(value: Enum | None) -> Any:
    return None if value is None else value.value


def utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC time: a naive one is UTC already (SQLite hands stored times back naive,
    and the office stores UTC), an aware one is converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


def _serialize_datetime(value: dt.datetime) -> str:
    return utc(value).isoformat()


def _parse_datetime(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            "DateTime must be an ISO 8601 string, e.g. 2026-12-01T09:30:00+07:00")
    try:
        return utc(dt.datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise StrawberryInputCoercionError(
            "DateTime must be an ISO 8601 string, e.g. 2026-12-01T09:30:00+07:00") from None


# Every `DateTime` of the schema, in and out, once (build_schema's scalar_map): sent in UTC
# with its offset (`+00:00`) whatever the database returned, and taken in any offset (a
# time without one is UTC) and converted to UTC before it reaches the data layer.
UTC_DATETIME = strawberry.scalar(
    name="DateTime",
    description="Date and time, ISO 8601. Sent in UTC with its offset (+00:00); taken with "
                "any offset, and a time without one is taken as UTC.",
    serialize=_serialize_datetime, parse_value=_parse_datetime)
