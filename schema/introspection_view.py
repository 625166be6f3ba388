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

import copy
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLDirective,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_operation_ast,
    is_list_type,
    is_non_null_type,
    is_required_argument,
    is_required_input_field,
    is_specified_directive,
    validate_schema,
    visit,
)
from graphql.pyutils import Undefined
from graphql.utilities import get_default_value_ast

# Root fields whose answer describes the schema (`__typename` does not: it is kept as is).
INTROSPECTION_ROOT_FIELDS = frozenset({"__schema", "__type"})
# No document can introspect at its root without one of these words.
_MENTIONS = re.compile(r"__(?:schema|type)\b")
# Role schemas kept at once: roles are the policy's (a token names a known one), so this
# bounds only a policy with very many roles, which then rebuilds (milliseconds) as needed.
MAX_CACHED_VIEWS = 64
UNAVAILABLE_CODE = "INTROSPECTION_UNAVAILABLE"

Coordinate = tuple[str, str]  # (type, field) of the policy


class IntrospectionViewError(RuntimeError):
    """A role's schema came out invalid (e.g. it may call no query at all)."""

    def __init__(self, role: str, problems: list[str]) -> None:
        super().__init__(f"no introspection schema for role {role!r}: {'; '.join(problems)}")
        self.role = role
        self.problems = problems


@dataclass(frozen=True)
class ArgumentGuards:
    """SPEC rule 5 as the schema declares it: the readable field (type, field) that using an
    argument, an input field or an enum value reveals. The resolvers check the same pairs
    (`require_readable`); here they decide what a role's introspection shows."""

    # (type, field, argument) → the field it reveals.
    arguments: Mapping[tuple[str, str, str], Coordinate] = field(default_factory=dict)
    # (input type, input field) → the field it reveals.
    input_fields: Mapping[Coordinate, Coordinate] = field(default_factory=dict)
    # (enum type, value) → the field it reveals.
    enum_values: Mapping[Coordinate, Coordinate] = field(default_factory=dict)

    def unknown(self, schema: GraphQLSchema) -> list[str]:
        """Guards naming what the schema lacks (drift between guards and schema)."""
        found = []
        for (type_name, field_name, argument), _ in self.arguments.items():
            owner = schema.type_map.get(type_name)
            if not isinstance(owner, GraphQLObjectType | GraphQLInterfaceType) or \
                    argument not in getattr(owner.fields.get(field_name), "args", {}):
                found.append(f"{type_name}.{field_name}({argument}:)")
        for (type_name, name), _ in self.input_fields.items():
            owner = schema.type_map.get(type_name)
            if not isinstance(owner, GraphQLInputObjectType) or name not in owner.fields:
                found.append(f"{type_name}.{name}")
        for (type_name, name), _ in self.enum_values.items():
            owner = schema.type_map.get(type_name)
            if not isinstance(owner, GraphQLEnumType) or name not in owner.values:
                found.append(f"{type_name}.{name}")
        return found


def role_schema(schema: GraphQLSchema, readable: Mapping[str, Iterable[str]],
                guards: ArgumentGuards, role: str = "") -> GraphQLSchema:
    """The schema as a role with these readable fields sees it (see the module docstring).
    Raises IntrospectionViewError when that is no valid schema."""
    view = _Visible(schema, readable, guards)
    built = _Builder(schema, view).build()
    problems = [error.message for error in validate_schema(built)]
    if problems:
        raise IntrospectionViewError(role, problems)
    return built


class _Visible:
    """Which fields, input fields, enum values and union members a role sees: the readable
    ones, less those whose type ends up empty, to a fixed point."""

    def __init__(self, schema: GraphQLSchema, readable: Mapping[str, Iterable[str]],
                 guards: ArgumentGuards) -> None:
        self.guards = guards
        self.readable = {t: frozenset(fs) for t, fs in readable.items()}
        types = {n: t for n, t in schema.type_map.items() if not n.startswith("__")}
        self.outputs = {n: t for n, t in types.items()
                        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)}
        self.inputs = {n: t for n, t in types.items() if isinstance(t, GraphQLInputObjectType)}
        self.enums = {n: t for n, t in types.items() if isinstance(t, GraphQLEnumType)}
        self.unions = {n: t for n, t in types.items() if isinstance(t, GraphQLUnionType)}
        self.fields = {n: list(t.fields) for n, t in self.outputs.items()}
        self.input_fields = {n: list(t.fields) for n, t in self.inputs.items()}
        self.enum_values = {n: [v for v in t.values
                                if self._reveals_readable(self.guards.enum_values.get((n, v)))]
                            for n, t in self.enums.items()}
        self._settle(schema)

    def _reveals_readable(self, pair: Coordinate | None) -> bool:
        return pair is None or pair[1] in self.readable.get(pair[0], ())

    def shows(self, type_: Any) -> bool:
        named = get_named_type(type_)
        name = named.name
        if name.startswith("__") or isinstance(named, GraphQLScalarType):
            return True
        if name in self.outputs:
            return bool(self.fields[name])
        if name in self.inputs:
            return bool(self.input_fields[name])
        if name in self.enums:
            return bool(self.enum_values[name])
        if name in self.unions:
            return any(self.shows(member) for member in self.unions[name].types)
        return False

    def argument_shown(self, type_name: str, field_name: str, name: str,
                       argument: GraphQLArgument) -> bool:
        pair = self.guards.arguments.get((type_name, field_name, name))
        return self._reveals_readable(pair) and self.shows(argument.type)

    def _settle(self, schema: GraphQLSchema) -> None:
        changed = True
        while changed:
            changed = False
            for name, type_ in self.outputs.items():
                kept = [f for f in self.fields[name] if self._field_shown(name, f, type_)]
                if isinstance(type_, GraphQLInterfaceType):
                    # An interface shows a field only where every implementation it has does.
                    shown = [t.name for t in schema.get_possible_types(type_)
                             if self.fields.get(t.name)]
                    kept = [f for f in kept if all(f in self.fields[t] for t in shown)]
                changed |= kept != self.fields[name]
                self.fields[name] = kept
            for name, type_ in self.inputs.items():
                kept = [f for f in self.input_fields[name] if self._input_shown(name, f, type_)]
                if any(is_required_input_field(type_.fields[f]) and f not in kept
                       for f in type_.fields):
                    kept = []  # a required input field hidden: the type cannot be written
                changed |= kept != self.input_fields[name]
                self.input_fields[name] = kept

    def _field_shown(self, type_name: str, field_name: str, type_: Any) -> bool:
        if isinstance(type_, GraphQLObjectType) and \
                field_name not in self.readable.get(type_name, ()):
            return False
        definition = type_.fields[field_name]
        if not self.shows(definition.type):
            return False
        return all(self.argument_shown(type_name, field_name, name, argument)
                   for name, argument in definition.args.items()
                   if is_required_argument(argument))

    def _input_shown(self, type_name: str, name: str, type_: GraphQLInputObjectType) -> bool:
        return (self._reveals_readable(self.guards.input_fields.get((type_name, name)))
                and self.shows(type_.fields[name].type))


class _Builder:
    """New type objects holding what `_Visible` shows; scalars are shared with the schema."""

    def __init__(self, schema: GraphQLSchema, view: _Visible) -> None:
        self.schema = schema
        self.view = view
        self.named: dict[str, GraphQLNamedType] = {}

    def build(self) -> GraphQLSchema:
        for name, type_ in self.schema.type_map.items():
            if name.startswith("__") or not self.view.shows(type_):
                continue
            self.named[name] = self._named(type_)
        roots = [self.schema.query_type, self.schema.mutation_type,
                 self.schema.subscription_type]
        query, mutation, subscription = (
            self.named.get(root.name) if root is not None else None for root in roots)
        return GraphQLSchema(
            query=query,  # type: ignore[arg-type]
            mutation=mutation,  # type: ignore[arg-type]
            subscription=subscription,  # type: ignore[arg-type]
            directives=[self._directive(d) for d in self.schema.directives],
            description=self.schema.description,
        )

    def _named(self, type_: GraphQLNamedType) -> GraphQLNamedType:
        name = type_.name
        if isinstance(type_, GraphQLScalarType):
            return type_
        if isinstance(type_, GraphQLEnumType):
            return self._enum(type_)
        if isinstance(type_, GraphQLObjectType):
            return GraphQLObjectType(name, fields=lambda: self._fields(type_),
                                     interfaces=lambda: self._interfaces(type_),
                                     description=type_.description)
        if isinstance(type_, GraphQLInterfaceType):
            return GraphQLInterfaceType(name, fields=lambda: self._fields(type_),
                                        interfaces=lambda: self._interfaces(type_),
                                        description=type_.description)
        if isinstance(type_, GraphQLUnionType):
            return GraphQLUnionType(name, types=lambda: [
                self.named[t.name] for t in type_.types if t.name in self.named],
                description=type_.description)
        if isinstance(type_, GraphQLInputObjectType):
            return GraphQLInputObjectType(
                name, fields=lambda: self._input_fields(type_), description=type_.description,
                is_one_of=type_.is_one_of)
        raise TypeError(f"unexpected type {name}")

    def _enum(self, type_: GraphQLEnumType) -> GraphQLEnumType:
        kept = self.view.enum_values[type_.name]
        if len(kept) == len(type_.values):
            return type_
        # A copy keeps the enum's own class (Strawberry serialises its Python values).
        clone = copy.copy(type_)
        clone.values = {name: type_.values[name] for name in kept}
        clone.__dict__.pop("_value_lookup", None)
        return clone

    def _wrap(self, type_: Any) -> Any:
        if is_non_null_type(type_):
            return GraphQLNonNull(self._wrap(type_.of_type))
        if is_list_type(type_):
            return GraphQLList(self._wrap(type_.of_type))
        return self.named.get(type_.name, type_)

    def _interfaces(self, type_: GraphQLObjectType | GraphQLInterfaceType
                    ) -> list[GraphQLInterfaceType]:
        return [self.named[i.name] for i in type_.interfaces  # type: ignore[misc]
                if i.name in self.named]

    def _fields(self, type_: GraphQLObjectType | GraphQLInterfaceType
                ) -> dict[str, GraphQLField]:
        fields = {}
        for name in self.view.fields[type_.name]:
            original = type_.fields[name]
            arguments = {
                arg_name: self._argument(argument) for arg_name, argument in original.args.items()
                if self.view.argument_shown(type_.name, name, arg_name, argument)}
            fields[name] = GraphQLField(
                self._wrap(original.type),
                args={n: a for n, a in arguments.items() if a is not None},
                description=original.description,
                deprecation_reason=original.deprecation_reason)
        return fields

    def _argument(self, original: GraphQLArgument) -> GraphQLArgument | None:
        argument = GraphQLArgument(
            self._wrap(original.type), default_value=original.default_value,
            description=original.description, deprecation_reason=original.deprecation_reason,
            out_name=original.out_name, default=original.default)
        return argument if _default_shown(argument) else None

    def _input_fields(self, type_: GraphQLInputObjectType) -> dict[str, GraphQLInputField]:
        fields = {}
        for name in self.view.input_fields[type_.name]:
            original = type_.fields[name]
            input_field = GraphQLInputField(
                self._wrap(original.type), default_value=original.default_value,
                description=original.description,
                deprecation_reason=original.deprecation_reason, out_name=original.out_name,
                default=original.default)
            if _default_shown(input_field):
                fields[name] = input_field
        return fields

    def _directive(self, directive: GraphQLDirective) -> GraphQLDirective:
        if is_specified_directive(directive):
            return directive
        return GraphQLDirective(
            directive.name, directive.locations,
            args={n: a for n, a in ((n, self._argument(a)) for n, a in directive.args.items())
                  if a is not None},
            is_repeatable=directive.is_repeatable, description=directive.description)


def _default_shown(value: GraphQLArgument | GraphQLInputField) -> bool:
    """Can the default be written with what the role sees (an enum value left out: no)?
    One that cannot is left out with its argument, which is optional (it has a default)."""
    if value.default_value is Undefined and value.default is None:
        return True
    try:
        return get_default_value_ast(value) is not None  # type: ignore[arg-type]
    except (GraphQLError, TypeError, ValueError):
        return False


# -- the operation, split --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntrospectionSplit:
    """An operation with introspection at its root, in two: `introspection` holds the root's
    `__schema` and `__type` fields (and `__typename` when nothing else is there), `rest` the
    other root fields (None: there are none); `keys` the root's response keys in order."""

    introspection: DocumentNode
    rest: DocumentNode | None
    keys: tuple[str, ...]


def mentions_introspection(query: str | None) -> bool:
    """The cheap test, on the document's text: may it introspect at all?"""
    return query is not None and _MENTIONS.search(query) is not None


def split_operation(document: DocumentNode, operation_name: str | None
                    ) -> IntrospectionSplit | None:
    """The split of the operation that runs; None when it does not introspect at its root."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None  # `__schema` and `__type` exist on the query root only
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    root = _RootFields(fragments)
    root.walk(operation.selection_set)
    if not root.names & INTROSPECTION_ROOT_FIELDS:
        return None
    alone = all(name.startswith("__") for name in root.names)
    introspecting: Callable[[str], bool] = (
        (lambda name: name.startswith("__")) if alone
        else (lambda name: name in INTROSPECTION_ROOT_FIELDS))
    part = _pruned(document, operation, root.fragments, introspecting, used_variables=True)
    rest = None if alone else _pruned(document, operation, root.fragments,
                                      lambda name: name not in INTROSPECTION_ROOT_FIELDS,
                                      used_variables=False)
    return IntrospectionSplit(introspection=part, rest=rest, keys=tuple(root.keys))


class _RootFields:
    """The root selection's field names, response keys (in order) and the fragments that are
    spread at the root."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.all_fragments = fragments
        self.names: set[str] = set()
        self.keys: list[str] = []
        self.fragments: set[str] = set()

    def walk(self, selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.names.add(selection.name.value)
                key = selection.alias.value if selection.alias else selection.name.value
                if key not in self.keys:
                    self.keys.append(key)
            elif isinstance(selection, InlineFragmentNode):
                self.walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in self.fragments and name in self.all_fragments:
                    self.fragments.add(name)
                    self.walk(self.all_fragments[name].selection_set)


def _pruned(document: DocumentNode, operation: OperationDefinitionNode, root_fragments: set[str],
            keep: Callable[[str], bool], used_variables: bool) -> DocumentNode:
    """The document with only `operation`, whose root keeps the fields `keep` names (in
    the root's fragments too). With `used_variables`, its variable definitions are those its
    selections use (the others may name types the role's schema does not have)."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    pruned: dict[str, FragmentDefinitionNode | None] = {}

    def prune(selection_set: SelectionSetNode) -> SelectionSetNode | None:
        kept: list[Any] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if keep(selection.name.value):
                    kept.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                inner = prune(selection.selection_set)
                if inner is not None:
                    kept.append(replace(selection, selection_set=inner))
            elif isinstance(selection, FragmentSpreadNode) and fragment(selection.name.value):
                kept.append(selection)
        return replace(selection_set, selections=tuple(kept)) if kept else None

    def fragment(name: str) -> FragmentDefinitionNode | None:
        if name not in pruned:
            pruned[name] = None  # validated documents have no cycles; this ends one anyway
            inner = prune(fragments[name].selection_set) if name in fragments else None
            pruned[name] = (replace(fragments[name], selection_set=inner)
                            if inner is not None else None)
        return pruned[name]

    selection_set = prune(operation.selection_set) or replace(operation.selection_set,
                                                              selections=())
    kept_fragments = [d for d in pruned.values() if d is not None]
    new_operation = replace(operation, selection_set=selection_set)
    others = [d for n, d in fragments.items() if n not in root_fragments]
    if used_variables:
        # Introspection below the root spreads fragments on `__` types only.
        others = [d for d in others if d.type_condition.name.value.startswith("__")]
        names = _variables_used([new_operation, *kept_fragments, *others])
        new_operation = replace(new_operation, variable_definitions=tuple(
            v for v in operation.variable_definitions or () if v.variable.name.value in names))
    return DocumentNode(definitions=(new_operation, *kept_fragments, *others))


def _variables_used(nodes: Iterable[Any]) -> set[str]:
    names: set[str] = set()

    class Variables(Visitor):
        def enter_variable(self, node: VariableNode, *_args: Any) -> None:
            names.add(node.name.value)

    for node in nodes:
        visit(node, Variables())
    return names


def merged(keys: Iterable[str], introspection: ExecutionResult, rest: ExecutionResult
           ) -> ExecutionResult:
    """One answer from both parts, in the document's order of response keys."""
    errors = [*(rest.errors or ()), *(introspection.errors or ())] or None
    if introspection.data is None or rest.data is None:
        return ExecutionResult(data=None, errors=errors, extensions=rest.extensions)
    data = {}
    for key in keys:
        if key in introspection.data:
            data[key] = introspection.data[key]
        elif key in rest.data:
            data[key] = rest.data[key]
    return ExecutionResult(data=data, errors=errors, extensions=rest.extensions)


# -- the cache and the hook --------------------------------------------------------------


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
