"""The compiled policy the request path uses decides exactly like Oso itself.

The gateway never calls Oso per request: at start-up it reads every decision out of the
`.polar` files into per-role sets. These tests ask Oso again, one raw evaluation per
(role, type, field) of the live schema, and compare — so the set lookups can never drift
from the policy an auditor reads.
"""

from __future__ import annotations

import pytest

from policies import CompiledPolicy, Policy, Principal
from policies.area_codes import located_codes
from policies.loader import AREA_LEVELS
from policies.resources import RESOURCES, Foreigner

ROLES = sorted(Policy().roles)


def test_every_role_of_the_policy_is_compiled(policy: Policy, compiled: CompiledPolicy) -> None:
    assert set(compiled.by_role) == policy.roles


@pytest.mark.parametrize("role", ROLES)
def test_compiled_field_decisions_equal_oso_as(
    role: str, policy: Policy, compiled: CompiledPolicy, fields: dict[str, list[str]]
) -> None:
    access = compiled.for_role(role)
    principal = Principal(role=role)
    differing = [
        (type_name, field_name, access.may_read(type_name, field_name))
        for type_name, names in fields.items()
        for field_name in names
        if access.may_read(type_name, field_name)
        != policy.allow_field(principal, type_name, field_name)
    ]
    assert differing == []


@pytest.mark.parametrize("role", ROLES)
def test_compiled_row_filters_equal_oso_data_filtering_as(
    role: str, policy: Policy, compiled: CompiledPolicy
) -> None:
    # Every jurisdiction level; a type without rows is absent from the compiled form.
    access = compiled.for_role(role)
    differing = [
        (level, type_name)
        for level in AREA_LEVELS
        for type_name in RESOURCES
        if access.row_filter(type_name, level) != policy.row_filter(role, level, type_name)
    ]
    assert differing == []


SETIABUDI_RT = "31.74.02.1001.01.001"
RECORDS = {
    "in Setiabudi": Foreigner(id=1, **located_codes(SETIABUDI_RT)),
    "in Tebet": Foreigner(id=2, **located_codes("31.74.01.1001.01.001")),
    "in another city": Foreigner(id=3, **located_codes("31.71.01.1001.01.001")),
}


@pytest.mark.parametrize("area", [None, "31.74", "31.74.02", SETIABUDI_RT])
@pytest.mark.parametrize("role", ROLES)
def test_record_field_decisions_are_row_and_compiled_field_as(
    role: str, area: str | None, policy: Policy, compiled: CompiledPolicy,
    fields: dict[str, list[str]]
) -> None:
    """Oso's answer about one record's field is exactly: its row is visible (the row filter)
    and the role may read the field (the compiled set) — the two halves the gateway uses."""
    access = compiled.for_role(role)
    principal = Principal(role=role, area=area, officer_id=1, subject="dev:x:1")
    differing = []
    for label, record in RECORDS.items():
        row_visible = policy.allow_row(principal, record)
        for field_name in fields["Foreigner"]:
            expected = row_visible and access.may_read("Foreigner", field_name)
            if policy.allow_record_field(principal, record, field_name) != expected:
                differing.append((label, field_name))
    assert differing == []


@pytest.mark.parametrize("role", ROLES)
def test_compiled_count_cell_minimum_equals_oso_as(
    role: str, policy: Policy, compiled: CompiledPolicy
) -> None:
    expected = policy.count_cell_minimum(Principal(role=role))
    assert compiled.for_role(role).count_cell_minimum == expected


@pytest.mark.parametrize("role", ROLES)
def test_compiled_decisions_deny_fields_the_schema_does_not_have_as(
    role: str, compiled: CompiledPolicy
) -> None:
    access = compiled.for_role(role)
    assert not access.may_read("Foreigner", "noSuchField")
    assert not access.may_read("NoSuchType", "id")
