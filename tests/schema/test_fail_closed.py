"""Fail closed (SPEC privacy rule 2): what no rule allows is null for everyone, a root field
without rules is FORBIDDEN, and the gateway reports the unmentioned field at start-up.

A tiny schema stands in for a developer who adds a type and forgets the policy: the real
`.polar` files plus one extra file that opens the root field `Query.extra` to every role —
and writes no rule at all for the new type `Extra` or for the root field `Query.unruled`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import strawberry
import structlog
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

import gateway.policy_runtime
from gateway.policy_runtime import load_policy
from policies import CompiledPolicy, Policy, Principal
from resolvers.db import Database
from schema.context import build_context
from schema.privacy import FieldPolicy
from schema.root import schema_fields

ROLES = sorted(Policy().roles)

EXTRA_RULES = """\
# Test only: a new root field, open to every role. Its type `Extra` has no rules.
readable(_role, "Query", field) if field in ["extra"];
"""


@strawberry.type
class Extra:
    secret: str | None
    # Same name as a readable Foreigner field: rules are per type, names don't carry over.
    nationality: str | None


@strawberry.type
class Query:
    @strawberry.field
    def extra(self) -> Extra | None:
        return Extra(secret="the secret", nationality="XYZ")

    @strawberry.field
    def unruled(self) -> str | None:
        return "should never be returned"


@pytest.fixture(scope="module")
def tiny_schema() -> strawberry.federation.Schema:
    return strawberry.federation.Schema(query=Query, extensions=[FieldPolicy])


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    directory = tmp_path_factory.mktemp("policy")
    for path in Policy().files:
        (directory / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "zz_extra.polar").write_text(EXTRA_RULES, encoding="utf-8")
    return Policy(Path(directory))


@pytest.fixture(scope="module")
def compiled(tiny_policy: Policy, tiny_schema: strawberry.federation.Schema) -> CompiledPolicy:
    return tiny_policy.compile(schema_fields(tiny_schema))


async def _execute(
    schema: strawberry.federation.Schema, compiled: CompiledPolicy, role: str, query: str
) -> Any:
    # No resolver of the tiny schema touches the database: the engine never connects.
    database = Database(create_async_engine("sqlite+aiosqlite:///:memory:"))
    context = build_context(Principal(role=role), compiled.for_role(role), database)
    try:
        return await schema.execute(query, context_value=context)
    finally:
        await database.engine.dispose()


@pytest.mark.parametrize("role", ROLES)
async def test_field_without_rules_is_null_and_listed_as_redacted_as(
    role: str, tiny_schema: strawberry.federation.Schema, compiled: CompiledPolicy
) -> None:
    result = await _execute(tiny_schema, compiled, role, "{ extra { secret nationality } }")
    assert result.errors is None
    assert result.data == {"extra": {"secret": None, "nationality": None}}
    assert result.extensions["redacted"] == {"Extra": ["nationality", "secret"]}


@pytest.mark.parametrize("role", ROLES)
async def test_field_without_rules_is_null_under_an_alias_and_a_fragment_as(
    role: str, tiny_schema: strawberry.federation.Schema, compiled: CompiledPolicy
) -> None:
    query = "{ e: extra { ...F } } fragment F on Extra { s: secret }"
    result = await _execute(tiny_schema, compiled, role, query)
    assert result.errors is None
    assert result.data == {"e": {"s": None}}
    assert result.extensions["redacted"] == {"Extra": ["secret"]}


@pytest.mark.parametrize("role", ROLES)
async def test_root_field_without_rules_is_forbidden_as(
    role: str, tiny_schema: strawberry.federation.Schema, compiled: CompiledPolicy
) -> None:
    result = await _execute(tiny_schema, compiled, role, "{ unruled }")
    assert result.data == {"unruled": None}
    assert len(result.errors) == 1
    assert result.errors[0].extensions == {"code": "FORBIDDEN"}
    assert "should never" not in str(result.errors[0].message)


def test_start_up_report_lists_the_fields_no_rule_mentions(compiled: CompiledPolicy) -> None:
    assert ("Extra", "secret") in compiled.unmentioned
    assert ("Extra", "nationality") in compiled.unmentioned
    assert ("Query", "unruled") in compiled.unmentioned
    assert ("Query", "extra") not in compiled.unmentioned


def test_gateway_warns_at_start_up_about_each_unmentioned_field(
    tiny_policy: Policy, tiny_schema: strawberry.federation.Schema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # gateway.logging caches a logger on first use, bound to the processors configured at
    # that moment; once a later create_app reconfigures logging, capture_logs cannot reach
    # that cached logger. The same logger name, fresh, sees the capturing configuration.
    monkeypatch.setattr(gateway.policy_runtime, "log", structlog.get_logger("sisada"))
    with capture_logs() as logs:
        load_policy(tiny_policy, tiny_schema)
    unmentioned = {
        (entry["type"], entry["field"])
        for entry in logs
        if entry["event"] == "policy.field_unmentioned" and entry["log_level"] == "warning"
    }
    assert {("Extra", "secret"), ("Extra", "nationality"), ("Query", "unruled")} <= unmentioned

