"""What a document will cost to execute, estimated before anything runs (SPEC rule 9).

The cost of a field is its weight plus, for each item it can return, the cost of its
selection: lists multiply. A paginated field multiplies its `nodes` by `first` (or its
default); every other list field declares the most items it can return next to its
definition (`max_items`), derived from the data model. A list field without a bound
refuses to build (`unbounded_list_fields`), so the estimate never silently counts one.

Weights: a field with a resolver that awaits (a DataLoader, a query) costs about twenty
plain ones in graphql-core, so it weighs `AWAITED_FIELD_WEIGHT`; a plain attribute weighs 1.
A field may declare its own weight (`weight`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
)
from graphql.type.introspection import (
    SchemaMetaFieldDef,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
)

# Keys of a Strawberry field's `metadata` that this module reads.
MAX_ITEMS = "sisada.max_items"
WEIGHT = "sisada.weight"
# `max_items` of a connection's `nodes`: the page size its parent field was asked for.
PAGE = "page"

AWAITED_FIELD_WEIGHT = 20
# A field that runs SQL statements of its own (a page, a list of areas): each one may scan
# the caller's scope, so a request may run only so many, however they are aliased.
STATEMENT_WEIGHT = 5_000
# A count over the caller's scope with any filter.
COUNT_WEIGHT = 10_000
# A page of located records (reports, activities): for roles that see them coarsened, the
# statement also counts residents per enclosing area for every row (resolvers/precision.py).
LOCATED_PAGE_WEIGHT = 20_000
# The page size assumed when `first` is given by an unknown variable.
MAX_PAGE_ITEMS = 1000
# Lists whose length the caller chooses with an argument (a list argument's length).
ARGUMENT_SIZED = {("Query", "_entities"): "representations"}


MaxItems = int | str | Callable[[Mapping[str, Any]], int]


def bounded(max_items: MaxItems, weight: int | None = None) -> dict[str, Any]:
    """Metadata for `strawberry.field(metadata=…)`: the most items a list field returns —
    a number, `PAGE`, or a function of the field's arguments (GraphQL names; a value the
    estimate cannot know, such as an unset variable, is missing from them)."""
    metadata: dict[str, Any] = {MAX_ITEMS: max_items}
    if weight is not None:
        metadata[WEIGHT] = weight
    return metadata


def weighted(weight: int) -> dict[str, Any]:
    """Metadata for a non-list field whose resolver may await although it is not async."""
    return {WEIGHT: weight}


@dataclass(frozen=True, slots=True)
class FieldCost:
    weight: int
    is_list: bool
    max_items: MaxItems | None


# Per schema (weakly: tests build and drop many; an id could be reused by another one).
_COSTS: WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], FieldCost]] = (
    WeakKeyDictionary())


def field_cost(schema: GraphQLSchema, parent: str, name: str, field: GraphQLField) -> FieldCost:
    costs = _COSTS.setdefault(schema, {})
    found = costs.get((parent, name))
    if found is None:
        found = costs[(parent, name)] = _field_cost(parent, name, field)
    return found


def _field_cost(parent: str, name: str, field: GraphQLField) -> FieldCost:
    definition = (field.extensions or {}).get("strawberry-definition")
    metadata: Mapping[str, Any] = getattr(definition, "metadata", None) or {}
    resolver = getattr(definition, "base_resolver", None)
    awaits = bool(resolver is not None and resolver.is_async)
    weight = metadata.get(WEIGHT, AWAITED_FIELD_WEIGHT if awaits else 1)
    return_type = field.type
    if isinstance(return_type, GraphQLNonNull):
        return_type = return_type.of_type
    is_list = isinstance(return_type, GraphQLList)
    max_items = metadata.get(MAX_ITEMS)
    if (parent, name) in ARGUMENT_SIZED:
        max_items = "argument"
    return FieldCost(weight=weight, is_list=is_list, max_items=max_items)


def unbounded_list_fields(schema: GraphQLSchema) -> list[str]:
    """List fields (introspection aside) that declare no bound: the estimate needs one."""
    missing = []
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        for name, field in graphql_type.fields.items():
            cost = field_cost(schema, type_name, name, field)
            if cost.is_list and cost.max_items is None:
                missing.append(f"{type_name}.{name}")
    return missing


class CostEstimator:
    """Estimates one operation; fragments expanded where they are used (memoised)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any] | None,
        readable: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.schema = schema
        # The caller's readable fields: a field it may not read resolves to null without
        # running (schema/privacy.py), so it costs 1 and its selection nothing.
        self.readable = readable
        self.fragments = fragments
        self.variables = dict(variables or {})
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value,
                                                          IntValueNode | ListValueNode):
                self.variables[name] = _literal(definition.default_value)
        self.memo: dict[tuple[str, str, int], int] = {}

    def operation(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self.selection_set(operation.selection_set, root, 1, frozenset())

    def selection_set(self, selection_set: SelectionSetNode | None, parent: Any, page: int,
                      seen: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page, seen)
            elif isinstance(selection, InlineFragmentNode):
                inner = self._type(selection.type_condition, parent)
                total += self.selection_set(selection.selection_set, inner, page, seen)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page, seen)
        return total

    def fragment(self, name: str, page: int, seen: frozenset[str]) -> int:
        definition = self.fragments.get(name)
        if definition is None or name in seen:
            return 0  # unknown fragments and cycles are other rules' errors
        parent = self._type(definition.type_condition, None)
        key = (name, parent.name if parent is not None else "", page)
        if key not in self.memo:
            self.memo[key] = self.selection_set(definition.selection_set, parent, page,
                                                seen | {name})
        return self.memo[key]

    def field(self, node: FieldNode, parent: Any, page: int, seen: frozenset[str]) -> int:
        name = node.name.value
        definition = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
        if definition is None and name in _INTROSPECTION_ROOTS:
            definition = _INTROSPECTION_ROOTS[name]
        if definition is None:
            return 1 + self.selection_set(node.selection_set, None, 1, seen)  # unknown field
        parent_name = parent.name if parent is not None else ""
        if name.startswith("__") or parent_name.startswith("__"):
            cost = self._introspection(parent, name, definition)
        elif self.readable is not None and name not in self.readable.get(parent_name, ()):
            return 1
        else:
            cost = field_cost(self.schema, parent_name, name, definition)
        child_page = self._first(node, definition)
        inner = get_named_type(definition.type)
        children = self.selection_set(node.selection_set, inner, child_page, seen)
        if cost.max_items == "argument":
            # Each representation is loaded (awaited) or answered with an error of its own.
            children += AWAITED_FIELD_WEIGHT
        return cost.weight + self._items(cost, node, page) * children

    def _introspection(self, parent: Any, name: str, definition: GraphQLField) -> FieldCost:
        """Introspection lists are as long as the schema makes them: measured from it."""
        return_type = definition.type
        if isinstance(return_type, GraphQLNonNull):
            return_type = return_type.of_type
        if not isinstance(return_type, GraphQLList):
            return FieldCost(weight=1, is_list=False, max_items=None)
        bounds = introspection_bounds(self.schema)
        key = f"{parent.name}.{name}" if parent is not None else name
        return FieldCost(weight=1, is_list=True, max_items=bounds.get(key, bounds["*"]))

    def _items(self, cost: FieldCost, node: FieldNode, page: int) -> int:
        if not cost.is_list:
            return 1
        if cost.max_items == PAGE:
            return page
        if cost.max_items == "argument":
            return max(1, self._argument_length(node))
        if isinstance(cost.max_items, int):
            return cost.max_items
        if callable(cost.max_items):
            arguments = {a.name.value: self._value(a.value) for a in node.arguments or ()}
            return cost.max_items({k: v for k, v in arguments.items() if v is not None})
        return MAX_PAGE_ITEMS  # undeclared: refused at build, counted high meanwhile

    def _first(self, node: FieldNode, definition: GraphQLField) -> int:
        """The page size a field with a `first` argument asks for (its connection's `nodes`
        return that many); 1 below any other field."""
        if "first" not in definition.args:
            return 1
        value: Any = definition.args["first"].default_value
        for argument in node.arguments or ():
            if argument.name.value == "first":
                value = self._value(argument.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_PAGE_ITEMS
        return max(0, min(value, MAX_PAGE_ITEMS))

    def _argument_length(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            value = self._value(argument.value)
            if isinstance(value, list):
                return len(value)
        return 1

    def _value(self, value: Any) -> Any:
        if isinstance(value, VariableNode):
            return self.variables.get(value.name.value)
        return _literal(value)

    def _type(self, condition: Any, parent: Any) -> Any:
        if condition is None:
            return parent
        return self.schema.get_type(condition.name.value)


_INTROSPECTION_ROOTS = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}
_INTROSPECTION_BOUNDS: WeakKeyDictionary[GraphQLSchema, dict[str, int]] = WeakKeyDictionary()


def introspection_bounds(schema: GraphQLSchema) -> dict[str, int]:
    """The longest list each introspection field can return for this schema."""
    found = _INTROSPECTION_BOUNDS.get(schema)
    if found is not None:
        return found
    types = list(schema.type_map.values())
    fields = [f for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
              for f in t.fields.values()]
    directives = list(schema.directives)
    most = {
        "__Schema.types": len(types),
        "__Schema.directives": len(directives),
        "__Type.fields": max((len(t.fields) for t in types if hasattr(t, "fields")
                              and not isinstance(t, GraphQLInputObjectType)), default=0),
        "__Type.inputFields": max((len(t.fields) for t in types
                                   if isinstance(t, GraphQLInputObjectType)), default=0),
        "__Type.enumValues": max((len(t.values) for t in types
                                  if isinstance(t, GraphQLEnumType)), default=0),
        "__Type.interfaces": max((len(t.interfaces) for t in types
                                  if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)),
                                 default=0),
        "__Type.possibleTypes": max((len(schema.get_possible_types(t)) for t in types
                                     if is_abstract_type(t)), default=0),
        "__Field.args": max((len(f.args) for f in fields), default=0),
        "__Directive.args": max((len(d.args) for d in directives), default=0),
        "__Directive.locations": 20,
    }
    most["*"] = max(most.values())
    _INTROSPECTION_BOUNDS[schema] = most
    return most


def _literal(value: Any) -> Any:
    if isinstance(value, IntValueNode):
        try:
            return int(value.value)
        except ValueError:
            return None
    if isinstance(value, ListValueNode):
        return list(value.values)
    if isinstance(value, StringValueNode | EnumValueNode):
        return value.value
    return None
