"""Load the policy and compile it against the live schema, once per process."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from gateway.logging import log
from policies import CompiledPolicy, Policy
from resolvers.scopes import untranslatable_fields
from schema.root import schema_fields


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    compiled: CompiledPolicy


def load_policy(policy: Policy, schema: strawberry.federation.Schema) -> LoadedPolicy:
    compiled = policy.compile(schema_fields(schema))
    # Fail closed, but say so: these fields are null for everyone until a rule names them.
    for type_name, field_name in compiled.unmentioned:
        log.warning("policy.field_unmentioned", type=type_name, field=field_name)
    for type_name, field_name in compiled.unknown:
        log.warning("policy.field_unknown_to_schema", type=type_name, field=field_name)
    for access in compiled.by_role.values():
        for type_name, field_name in untranslatable_fields(access):
            log.warning("policy.row_field_unknown", role=access.role, type=type_name,
                        field=field_name)
    log.info("policy.loaded", files=[p.name for p in policy.files], roles=sorted(policy.roles))
    return LoadedPolicy(policy=policy, compiled=compiled)
