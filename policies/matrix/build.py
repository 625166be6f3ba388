"""The access matrix: who can see what, read out of the loaded and compiled policy.

Every cell comes from the same compiled form the gateway enforces (`CompiledPolicy`) or
from a rule of the loaded policy; nothing is written here by hand. The result is plain
JSON data in a fixed order (roles as `role(…)` declares them, types and fields by name),
so its Markdown rendering can be committed and diffed in review.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.area_codes import LEVELS
from policies.loader import CompiledPolicy, Policy, RoleAccess
from policies.matrix import declared
from policies.matrix.scope_words import scope_in_words
from policies.resources import RESOURCES

MATRIX_VERSION = 1
# GraphQL's operation types: their fields are what a caller may call at all (main.polar).
ROOT_TYPES = ("Query", "Mutation", "Subscription")


def schema_fields_of(compiled: CompiledPolicy) -> dict[str, list[str]]:
    """Every (type, field) of the schema the policy was compiled against: each one is
    readable by some role or listed as unmentioned (null for everyone)."""
    fields: dict[str, set[str]] = {}
    for access in compiled.by_role.values():
        for type_name, names in access.readable.items():
            fields.setdefault(type_name, set()).update(names)
    for type_name, field_name in compiled.unmentioned:
        fields.setdefault(type_name, set()).add(field_name)
    return {t: sorted(fs) for t, fs in sorted(fields.items())}


def access_matrix(policy: Policy, compiled: CompiledPolicy) -> dict[str, Any]:
    roles = [r for r in declared.declared_roles(policy) if r in compiled.by_role]
    fields = schema_fields_of(compiled)
    # The trail's rules (trail.polar) as the loader compiled them; None: not declared yet.
    recorded = (set(policy.recorded_fields())
                if declared.is_declared(policy, "recorded_field", 2) else None)
    return {
        "version": MATRIX_VERSION,
        "files": [path.name for path in policy.files],
        "roles": roles,
        "anonymous_role": policy.anonymous_role,
        "root_fields": _field_rows(compiled, roles, fields, recorded, root=True),
        "types": _field_rows(compiled, roles, fields, recorded, root=False),
        "by_role": {role: _role_summary(policy, compiled.for_role(role)) for role in roles},
        "recorded_fields": _recorded(recorded),
        "purposes": _purposes(policy, compiled, roles),
        "policy_page": [role for role in roles if declared.policy_page_allowed(policy, role)],
        "unmentioned": [[t, f] for t, f in compiled.unmentioned],
        "unknown": [[t, f] for t, f in compiled.unknown],
    }


def _field_rows(compiled: CompiledPolicy, roles: list[str], fields: Mapping[str, list[str]],
                recorded: set[tuple[str, str]] | None, *, root: bool) -> list[dict[str, Any]]:
    names = [t for t in fields if (t in ROOT_TYPES) == root]
    if root:
        names.sort(key=ROOT_TYPES.index)
    return [
        {"type": type_name,
         "fields": [{"field": field_name,
                     "readers": [r for r in roles
                                 if compiled.for_role(r).may_read(type_name, field_name)],
                     "recorded": (type_name, field_name) in (recorded or ())}
                    for field_name in fields[type_name]]}
        for type_name in names
    ]


def _role_summary(policy: Policy, access: RoleAccess) -> dict[str, Any]:
    role = access.role
    levels = sorted(policy.jurisdiction_levels.get(role, ()), key=LEVELS.index)
    return {
        "jurisdiction_levels": levels,
        "officer_kind": policy.officer_kinds.get(role),
        "row_scope": [_scope_at(access, level) for level in (levels or [None])],
        "count_cell_minimum": access.count_cell_minimum,
        "location_precision": _precision(policy, access),
        "schema_hints": access.schema_hints,
        "purpose_required": (access.purpose_required
                             if declared.is_declared(policy, "purpose_required", 1) else None),
    }


def _scope_at(access: RoleAccess, level: str | None) -> dict[str, Any]:
    """Rows per resource type for a caller whose area is at `level` (None: no area, the
    only case for a role whose tokens carry none)."""
    return {
        "level": level,
        "rows": {type_name: scope_in_words(access.row_filter(type_name, level), type_name,
                                           access.role, level)
                 for type_name in sorted(RESOURCES)},
    }


def _precision(policy: Policy, access: RoleAccess) -> dict[str, dict[str, Any]]:
    links = declared.hidden_links(policy)
    return {
        type_name: {
            "k": precision.k,
            "hidden_links": [f for f in links.get(type_name, [])
                             if not access.may_read(type_name, f)],
            "place_texts": sorted(precision.texts),
        }
        for type_name, precision in sorted(access.location_precision.items())
    }


def _recorded(recorded: set[tuple[str, str]] | None) -> list[list[str]] | None:
    return None if recorded is None else [[t, f] for t, f in sorted(recorded)]


def _purposes(policy: Policy, compiled: CompiledPolicy, roles: list[str]
              ) -> list[dict[str, Any]] | None:
    if not declared.is_declared(policy, "purpose", 1):
        return None
    return [{"name": name,
             "stated_by": [r for r in roles if name in compiled.for_role(r).purposes]}
            for name in policy.purposes()]
