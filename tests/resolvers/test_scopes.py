"""Row filters from the policy, as SQL conditions: fail closed, built once per claims."""

from __future__ import annotations

from sqlalchemy.dialects import sqlite

from policies import CompiledPolicy, Principal
from policies.row_filters import Claim, Comparison
from resolvers.scopes import row_condition, untranslatable

POLICE_SETIABUDI = Principal(role="police", area="31.74.02")


def sql(condition: object) -> str:
    return str(condition.compile(dialect=sqlite.dialect(),  # type: ignore[attr-defined]
                                 compile_kwargs={"literal_binds": True}))


def police_filter(compiled: CompiledPolicy, type_name: str, principal: Principal) -> object:
    access = compiled.for_role(principal.role)
    return row_condition(type_name, access.row_filter(type_name, principal.area_level), principal)


def test_no_filter_matches_nothing() -> None:
    assert sql(row_condition("Foreigner", (), POLICE_SETIABUDI)) == "0"


def test_unknown_field_matches_nothing() -> None:
    unknown = ((Comparison("passport_colour", "eq", "red"),),)
    assert sql(row_condition("Foreigner", unknown, POLICE_SETIABUDI)) == "0"
    assert untranslatable("Foreigner", unknown) == ["passport_colour"]


def test_absent_claim_matches_nothing_never_is_null() -> None:
    own = ((Comparison("officer_id", "eq", Claim("officer_id")),),)
    assert sql(row_condition("Activity", own, POLICE_SETIABUDI)) == "0"


def test_jurisdiction_without_area_claim_matches_nothing(compiled: CompiledPolicy) -> None:
    no_area = Principal(role="police")
    assert sql(police_filter(compiled, "Foreigner", no_area)) == "0"
    malformed = Principal(role="police", area="Setiabudi")
    assert malformed.area_level is None
    assert sql(police_filter(compiled, "Report", malformed)) == "0"


def test_jurisdiction_is_one_equality_at_the_claims_level(compiled: CompiledPolicy) -> None:
    text = sql(police_filter(compiled, "Report", POLICE_SETIABUDI))
    assert text == "report.kecamatan_code = '31.74.02'"
    city = Principal(role="police", area="31.74")
    expected = "current_residence.city_code = '31.74'"
    assert sql(police_filter(compiled, "Foreigner", city)) == expected


def test_area_inside_jurisdiction_is_a_code_prefix(compiled: CompiledPolicy) -> None:
    text = sql(police_filter(compiled, "Area", POLICE_SETIABUDI))
    assert text == ("CASE WHEN (length(area.code) >= 8) THEN substr(area.code, 1, 8) ELSE NULL END "
                    "= '31.74.02'")


def test_conditions_are_built_once_per_claims(compiled: CompiledPolicy) -> None:
    first = police_filter(compiled, "Foreigner", POLICE_SETIABUDI)
    again = police_filter(compiled, "Foreigner", Principal(role="police", area="31.74.02"))
    other = police_filter(compiled, "Foreigner", Principal(role="police", area="31.74.01"))
    assert first is again
    assert other is not first and "31.74.01" in sql(other)
