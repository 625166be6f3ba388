"""Per-role introspection: `__schema` and `__type` answer with the caller's own contract.

A partner building its own view (or generating a client) reads introspection; showing it
every type and field of the gateway, most of them null or FORBIDDEN for it, is a map of
what it may not have. So the introspection of a caller is computed against a schema of
its role (`role_schema`), derived from the compiled policy and cached per role:

- root fields: those the role may call (Query, Mutation, Subscription as the policy's
  `readable` says; a root type left without fields is left out);
- object types and their fields: the fields the role may read, of the types it can reach
  from those root fields; a type it cannot reach is not there (`__type` answers null);
- arguments, input fields and enum values that filter, sort or search by a field the role
  may not read (SPEC rule 5, `ArgumentGuards`) are left out; a field with a required
  argument left out goes too.

Only what introspection *shows* changes. Operations still run against the whole schema: a
field hidden here that a caller selects anyway validates and answers as before (null, and
listed in `extensions.redacted`; FORBIDDEN for a root field), so existing frontends keep
working. `_service { sdl }` is a root field like any other: routers compose the whole SDL.

The hook (`IntrospectionViews.execute_function`) costs an operation without `__schema`
or `__type` in its text one regular-expression search. An operation that has them at its
root is split: its introspection root fields run against the role's schema, the others
(if any) against the whole schema, each once, and the answer keeps the document's order.
Introspection settings and limits are validation rules, so they have run before this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema

from schema.introspection_view.role_schema import (
    ArgumentGuards,
    IntrospectionViewError,
    role_schema,
)
from schema.introspection_view.split import mentions_introspection, merged, split_operation

__all__ = ["ArgumentGuards", "IntrospectionViewError", "IntrospectionViews",
           "mentions_introspection", "role_schema"]

# Role schemas kept at once: roles are the policy's (a token names a known one), so this
# bounds only a policy with very many roles, which then rebuilds (milliseconds) as needed.
MAX_CACHED_VIEWS = 64
UNAVAILABLE_CODE = "INTROSPECTION_UNAVAILABLE"


ExecuteFunction = Callable[..., Any]


class IntrospectionViews:
    """The role schemas of one schema, built on first use and kept per role while the
    role's readable fields are the same object (a policy reload compiles new ones, and
    `clear` drops the old views at once)."""

    def __init__(self, schema: GraphQLSchema, guards: ArgumentGuards) -> None:
        unknown = guards.unknown(schema)
        if unknown:
            raise TypeError(f"argument guards name what the schema lacks: {unknown}")
        self.schema = schema
        self.guards = guards
        self._by_role: dict[str, tuple[Mapping[str, Any], GraphQLSchema]] = {}

    def clear(self) -> None:
        self._by_role = {}

    def schema_for(self, role: str, readable: Mapping[str, Iterable[str]]) -> GraphQLSchema:
        entry = self._by_role.get(role)
        if entry is not None and entry[0] is readable:
            return entry[1]
        view = role_schema(self.schema, readable, self.guards, role)
        if len(self._by_role) >= MAX_CACHED_VIEWS:
            self._by_role = {}
        self._by_role[role] = (readable, view)
        return view

    def execute_function(self, execute: ExecuteFunction, document: DocumentNode | None,
                         operation_name: str | None, context: Any) -> ExecuteFunction:
        """`execute` (graphql-core's, as Strawberry calls it), or, for an operation that
        introspects at its root, one that answers that part from the caller's role schema.
        A context without a caller's access (tools, unit tests) sees the whole schema."""
        access = getattr(context, "access", None)
        readable = getattr(access, "readable", None)
        if document is None or readable is None:
            return execute
        split = split_operation(document, operation_name)
        if split is None:
            return execute
        role = str(getattr(access, "role", ""))

        async def run(schema: GraphQLSchema, _document: DocumentNode, **kwargs: Any
                      ) -> ExecutionResult:
            try:
                view = self.schema_for(role, readable)
            except IntrospectionViewError:
                return ExecutionResult(data=None, errors=[GraphQLError(
                    "introspection is unavailable for your role",
                    extensions={"code": UNAVAILABLE_CODE})])
            # Introspection resolves from the schema objects alone: no field policy there.
            part = await _awaited(execute(view, split.introspection,
                                          **{**kwargs, "middleware": None}))
            if split.rest is None:
                return part
            rest = await _awaited(execute(schema, split.rest, **kwargs))
            return merged(split.keys, part, rest)

        return run


async def _awaited(value: ExecutionResult | Awaitable[ExecutionResult]) -> ExecutionResult:
    if isinstance(value, ExecutionResult):
        return value
    return await value
