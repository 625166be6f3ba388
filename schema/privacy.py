"""Field-level policy on every path: one schema-level hook, one set lookup per field.

Every field of every response — root fields, nested objects, fragments,
aliases, federation entities, mutation results — passes through `resolve`
here, so no resolver can forget a check. A denied root field is a FORBIDDEN
error; a denied object field resolves to null without running its resolver,
and is listed in `extensions.redacted` so hidden is told apart from unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLResolveInfo
from strawberry.extensions import SchemaExtension

from schema.errors import forbidden_field

ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})


class FieldPolicy(SchemaExtension):
    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # The hot path of every response: one dict lookup and one set lookup per field.
        type_name = info.parent_type.name
        field_name = info.field_name
        context = info.context
        allowed = context.readable.get(type_name)
        if allowed is not None and field_name in allowed:
            return _next(root, info, *args, **kwargs)
        if field_name.startswith("__") or type_name.startswith("__"):
            # Introspection (__typename, __schema, __type and the types they return).
            return _next(root, info, *args, **kwargs)
        if type_name in ROOT_TYPES:
            raise forbidden_field(type_name, field_name)
        context.redacted.add((type_name, field_name))
        return None

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        redacted = getattr(context, "redacted", None)
        if not redacted:
            return {}
        by_type: dict[str, list[str]] = {}
        for type_name, field_name in sorted(redacted):
            by_type.setdefault(type_name, []).append(field_name)
        return {"redacted": by_type}
