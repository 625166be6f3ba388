"""Field-level policy on every path: one schema-level hook, one set lookup per field.

Every field of every response — root fields, nested objects, fragments,
aliases, federation entities, mutation results — passes through `resolve`
here, so no resolver can forget a check. A denied root field is a FORBIDDEN
error; a denied object field resolves to null without running its resolver,
and is listed in `extensions.redacted` so hidden is told apart from unknown.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    is_abstract_type,
    visit,
)
from graphql.execution.middleware import MiddlewareManager
from strawberry.extensions import SchemaExtension

from schema.context import begin_operation
from schema.errors import forbidden_field
from schema.trail import PURPOSE_REQUIRED_MESSAGE, PurposeRequiredError, recorded

ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})


class FieldPolicy(SchemaExtension):
    _needs_checks: bool | None = None

    def on_operation(self) -> Iterator[None]:
        begin_operation()
        yield

    def needs_checks(self) -> bool:
        """Does this operation select any field the caller may not read?

        Decisions depend on (role, type, field) only, so the document says it all: when
        every (type, field) it selects is readable, no field of the response can be denied
        and the per-field hook is skipped (`PolicyMiddleware`). Anything unclear: check.
        """
        if self._needs_checks is None:
            self._needs_checks = self._selects_unreadable()
        return self._needs_checks

    def _selects_unreadable(self) -> bool:
        execution = self.execution_context
        readable = getattr(execution.context, "readable", None)
        recorded = getattr(execution.context, "hook_recorded", frozenset())
        document, query = execution.graphql_document, execution.query
        if readable is None or document is None or query is None:
            return True
        schema = execution.schema._schema
        # A recorded field needs the hook too: it notes each value for the access trail.
        return any(
            field_name not in readable.get(type_name, ()) or (type_name, field_name) in recorded
            for type_name, field_name in selected_fields(schema, query, document)
        )

    def hooks(self, fields: tuple[tuple[str, str], ...] | None) -> bool:
        """Must the hook run for a resolver of these (type, field) pairs? When the caller
        may not read one, or the trail notes it here; a resolver that names no field (or a
        context without a policy view) is always checked."""
        context = self.execution_context.context
        readable = getattr(context, "readable", None)
        if fields is None or readable is None:
            return True
        recorded = getattr(context, "hook_recorded", frozenset())
        return any(f not in readable.get(t, ()) or (t, f) in recorded for t, f in fields)

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
            if (type_name, field_name) in context.hook_recorded:
                return recorded(_next(root, info, *args, **kwargs), root, type_name,
                                field_name, info)
            return _next(root, info, *args, **kwargs)
        if field_name.startswith("__") or type_name.startswith("__"):
            # Introspection (__typename, __schema, __type and the types they return).
            return _next(root, info, *args, **kwargs)
        if type_name in ROOT_TYPES:
            raise forbidden_field(type_name, field_name)
        if (type_name, field_name) in context.purpose_blocked:
            # Readable by the role, recorded, and no purpose it may state: said so, per path.
            raise PurposeRequiredError(PURPOSE_REQUIRED_MESSAGE)
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


class PolicyMiddleware(MiddlewareManager):
    """graphql-core middleware holding the field policy, *falsy* when the operation does not
    need it: graphql-core tests the manager before wrapping each resolver, so on the common
    path (every selected field readable) the executor calls the plain resolvers, as if
    there were no policy.

    When it is needed, only the fields that need it are wrapped: every field of the schema
    has a resolver of its own (`_resolver_fields`), so a resolver names its field, and a
    field the caller may read and the trail does not record keeps its plain resolver. A
    page of a thousand records with one hidden field pays the hook on that field alone."""

    def __init__(self, policy: FieldPolicy) -> None:
        super().__init__(policy)
        self.policy = policy

    def __bool__(self) -> bool:
        return self.policy.needs_checks()

    def get_field_resolver(self, field_resolver: Any) -> Any:
        wrapped = self._cached_resolvers.get(field_resolver)
        if wrapped is None:
            wrapped = (super().get_field_resolver(field_resolver)
                       if self._needs_hook(field_resolver) else field_resolver)
            self._cached_resolvers[field_resolver] = wrapped
        return wrapped

    def _needs_hook(self, field_resolver: Any) -> bool:
        schema = self.policy.execution_context.schema._schema
        return self.policy.hooks(_resolver_fields(schema).get(field_resolver))


_RESOLVER_FIELDS: WeakKeyDictionary[GraphQLSchema, dict[Any, tuple[tuple[str, str], ...]]] = (
    WeakKeyDictionary())


def _resolver_fields(schema: GraphQLSchema) -> dict[Any, tuple[tuple[str, str], ...]]:
    """Resolver → the (type, field) pairs it resolves, introspection aside (its fields
    pass through the hook untouched, so they are never wrapped for it)."""
    found = _RESOLVER_FIELDS.get(schema)
    if found is None:
        pairs: dict[Any, list[tuple[str, str]]] = {}
        for type_name, graphql_type in schema.type_map.items():
            if type_name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
                continue
            for field_name, field in graphql_type.fields.items():
                if field.resolve is not None:
                    pairs.setdefault(field.resolve, []).append((type_name, field_name))
        found = {resolver: tuple(names) for resolver, names in pairs.items()}
        _RESOLVER_FIELDS[schema] = found
    return found


_SELECTED: OrderedDict[tuple[int, str], frozenset[tuple[str, str]]] = OrderedDict()
_SELECTED_MAX = 1024


def selected_fields(
    schema: GraphQLSchema, query: str, document: DocumentNode
) -> frozenset[tuple[str, str]]:
    """Every (object type, field) the document can execute, introspection aside.

    All operations and fragments count, @skip/@include are ignored, and a field selected on
    an interface or union counts for every possible object type: a superset, never less.
    Cached per query text.
    """
    key = (id(schema), query)
    found = _SELECTED.get(key)
    if found is None:
        found = _collect(schema, document)
        _SELECTED[key] = found
        if len(_SELECTED) > _SELECTED_MAX:
            _SELECTED.popitem(last=False)
    return found


def _collect(schema: GraphQLSchema, document: DocumentNode) -> frozenset[tuple[str, str]]:
    type_info = TypeInfo(schema)
    pairs: set[tuple[str, str]] = set()

    class Fields(Visitor):
        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            name = node.name.value
            parent = type_info.get_parent_type()
            if name.startswith("__"):
                return
            if parent is None:
                pairs.add(("", name))  # unknown parent: never readable, so checked
            elif is_abstract_type(parent):
                pairs.update((t.name, name) for t in schema.get_possible_types(parent))
            else:
                pairs.add((parent.name, name))

    visit(document, TypeInfoVisitor(type_info, Fields()))
    return frozenset(pairs)
