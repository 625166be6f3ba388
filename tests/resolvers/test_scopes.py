"""Row scopes named by the policy, as SQL conditions: fail closed, built once per claims."""

from __future__ import annotations

from sqlalchemy.dialects import sqlite

from policies import Principal
from resolvers.scopes import scope_condition

POLICE_SETIABUDI = Principal(role="police", area="31.74.02")


def sql(condition: object) -> str:
    return str(condition.compile(dialect=sqlite.dialect(),  # type: ignore[attr-defined]
                                 compile_kwargs={"literal_binds": True}))


def test_unknown_scope_matches_nothing() -> None:
    assert sql(scope_condition("Foreigner", frozenset({"everything"}), POLICE_SETIABUDI)) == "0"


def test_no_scope_matches_nothing() -> None:
    assert sql(scope_condition("Foreigner", frozenset(), POLICE_SETIABUDI)) == "0"


def test_jurisdiction_without_area_claim_matches_nothing() -> None:
    no_area = Principal(role="police")
    assert sql(scope_condition("Foreigner", frozenset({"jurisdiction"}), no_area)) == "0"
    malformed = Principal(role="police", area="Setiabudi")
    assert sql(scope_condition("Report", frozenset({"jurisdiction"}), malformed)) == "0"


def test_jurisdiction_is_one_equality_at_the_claims_level() -> None:
    text = sql(scope_condition("Report", frozenset({"jurisdiction"}), POLICE_SETIABUDI))
    assert text == "report.kecamatan_code = '31.74.02'"


def test_conditions_are_built_once_per_claims() -> None:
    scopes = frozenset({"jurisdiction"})
    first = scope_condition("Foreigner", scopes, POLICE_SETIABUDI)
    again = scope_condition("Foreigner", scopes, Principal(role="police", area="31.74.02"))
    other = scope_condition("Foreigner", scopes, Principal(role="police", area="31.74.01"))
    assert first is again
    assert other is not first and "31.74.01" in sql(other)
