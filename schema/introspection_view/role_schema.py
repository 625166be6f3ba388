"""The schema one role sees: the readable fields of the types it can reach from the root
fields it may call, less the arguments that would reveal a field it may not read."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
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
    get_named_type,
    is_list_type,
    is_non_null_type,
    is_required_argument,
    is_required_input_field,
    is_specified_directive,
    validate_schema,
)
from graphql.pyutils import Undefined
from graphql.utilities import get_default_value_ast

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
    """The schema as a role with these readable fields sees it (the package docstring says how).
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
