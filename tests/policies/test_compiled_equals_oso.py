"""The compiled policy the request path uses decides exactly like Oso itself.

The gateway never calls Oso per request: at start-up it reads every decision out of the
`.polar` files into per-role sets. These tests ask Oso again, one raw evaluation per
(role, type, field) of the live schema, and compare — so the set lookups can never drift
from the policy an auditor reads.
"""

from __future__ import annotations

import pytest

from policies import CompiledPolicy, Policy, Principal

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
def test_compiled_row_scopes_equal_oso_as(
    role: str, policy: Policy, compiled: CompiledPolicy, fields: dict[str, list[str]]
) -> None:
    access = compiled.for_role(role)
    principal = Principal(role=role)
    for type_name in fields:
        assert access.scopes_for(type_name) == policy.row_scopes(principal, type_name), type_name


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
