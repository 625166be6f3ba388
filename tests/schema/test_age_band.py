"""Derived values change for everyone at once (SPEC rule 7): the age band is computed as of
1 January of the current year, so it never flips on a person's birthday."""

from __future__ import annotations

import datetime as dt

import pytest

from resolvers.seed import age_base_year
from schema.common import age_band, age_reference


@pytest.mark.parametrize("birth", [dt.date(1990, 7, 15), dt.date(2000, 12, 31),
                                   dt.date(1961, 1, 1), dt.date(2008, 2, 29)])
def test_age_band_does_not_change_on_a_birthday(birth: dt.date) -> None:
    day, bands = dt.date(2025, 1, 1), set()
    while day.year == 2025:
        # What the gateway answers for a request made on that day.
        bands.add(age_band(age_base_year(birth), age_reference(day).year))
        day += dt.timedelta(days=1)
    assert len(bands) == 1


def test_age_band_moves_for_everyone_on_the_first_of_january() -> None:
    birth = dt.date(2000, 6, 30)  # 24 on 1 January 2025, 25 on 30 June 2025
    assert age_band(age_base_year(birth), 2025) == "18-24"
    assert age_band(age_base_year(birth), 2026) == "25-34"


def test_age_band_defaults_to_the_first_of_january_of_this_year() -> None:
    today = dt.date.today()
    born = dt.date(today.year - 30, 12, 31)  # 29 on 1 January, 30 only on 31 December
    assert age_band(age_base_year(born)) == "25-34"
    assert age_band(age_base_year(dt.date(today.year - 25, 12, 31))) == "18-24"
