"""The gateway's entity fetch, answered by a plan compiled once per document.

Nearly every request the registry receives is the same few `_entities` documents (flat
inline fragments of scalar fields on Person or PermitDocument) with a thousand
representations. Executing one through graphql-core resolves and completes every field of
every entity in Python, several times the cost of its one SQL statement; a router's
subgraph would answer it from a query plan instead. A document of exactly that flat shape,
valid against the schema, is compiled once into such a plan: one statement per type and a
dict per entity built straight from its row, in the order GraphQL would give. Anything
else — another shape, a directive, a fragment spread, an invalid document, variables that
would not coerce, more representations than allowed — goes to the schema as before, so
every error still comes from Strawberry. tests/registry/test_entity_plan.py proves both
paths answer alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from graphql import (
    FieldNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
    validate,
)
from graphql.error import GraphQLError

from examples.registry.schema import (
    ENTITY_TABLES,
    MAX_REPRESENTATIONS,
    RegistryContext,
    UnknownEntityTypeError,
    entity_keys,
    id_in,
    in_representation_order,
    rows,
)

# Distinct documents kept compiled; the gateway sends one per selected field set.
PLAN_CACHE_SIZE = 256


def _scalar(value: Any) -> Any:
    # What Strawberry's scalars serialise to: Date as ISO text, the rest as they are.
    return value.isoformat() if isinstance(value, date) else value


@dataclass(frozen=True, slots=True)
class EntityPlan:
    """A flat `_entities` document: per entity type, (response key, field) in order."""

    variable: str
    response_key: str
    fields_by_type: dict[str, tuple[tuple[str, str], ...]]

    async def answer(self, context: RegistryContext,
                     variables: dict[str, Any] | None) -> dict[str, Any] | None:
        """The response, or None when the schema must answer instead (errors included)."""
        representations = (variables or {}).get(self.variable)
        if not isinstance(representations, list) or len(representations) > MAX_REPRESENTATIONS:
            return None
        try:
            wanted, ids_by_type = entity_keys(representations)
        except UnknownEntityTypeError:
            return None
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for type_name, ids in ids_by_type.items():
            table = ENTITY_TABLES[type_name]
            selected = self.fields_by_type.get(type_name, ())
            names = {name for _, name in selected}
            statement, _attributes = table.select_fields(names)
            # select_fields keeps the table's column order, after the id.
            position = {name: index for index, name in
                        enumerate((n for n in table.fields if n in names), 1)}
            build = _builder(type_name, selected, position)
            for row in await rows(context, statement.where(id_in(context, table.id_column, ids))):
                found[type_name, row[0]] = build(row)
        return {"data": {self.response_key: in_representation_order(wanted, found)}}


def _builder(type_name: str, selected: tuple[tuple[str, str], ...], position: dict[str, int]
             ) -> Callable[[Sequence[Any]], dict[str, Any]]:
    # Per response key: the row's column index, 0 for the id, None for __typename.
    plan = [(key, None if name == "__typename" else position.get(name, 0))
            for key, name in selected]

    def build(row: Sequence[Any]) -> dict[str, Any]:
        entity: dict[str, Any] = {}
        for key, index in plan:
            if index is None:
                entity[key] = type_name
            elif index == 0:
                entity[key] = str(row[0])
            else:
                entity[key] = _scalar(row[index])
        return entity

    return build


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _compiled(schema: GraphQLSchema, query: str, operation_name: str | None
              ) -> EntityPlan | None:
    try:
        document = parse(query)
    except GraphQLError:
        return None
    if validate(schema, document):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(document.definitions) != 1 or len(operations) != 1:
        return None
    operation = operations[0]
    if (operation.operation is not OperationType.QUERY or operation.directives
            or (operation_name is not None
                and (operation.name is None or operation.name.value != operation_name))):
        return None
    if len(operation.selection_set.selections) != 1:
        return None
    root = operation.selection_set.selections[0]
    if not isinstance(root, FieldNode) or root.name.value != "_entities" or root.directives:
        return None
    if (len(root.arguments) != 1 or root.arguments[0].name.value != "representations"
            or not isinstance(root.arguments[0].value, VariableNode)
            or root.selection_set is None):
        return None
    return _entity_selections(root, root.arguments[0].value.name.value)


def _entity_selections(root: FieldNode, variable: str) -> EntityPlan | None:
    fields_by_type: dict[str, list[tuple[str, str]]] = {name: [] for name in ENTITY_TABLES}
    order: list[tuple[str | None, str, str]] = []
    assert root.selection_set is not None
    for selection in root.selection_set.selections:
        if isinstance(selection, FieldNode) and selection.name.value == "__typename":
            if selection.directives:
                return None
            order.append((None, (selection.alias or selection.name).value, "__typename"))
            continue
        if (not isinstance(selection, InlineFragmentNode) or selection.directives
                or selection.type_condition is None
                or selection.type_condition.name.value not in ENTITY_TABLES):
            return None
        type_name = selection.type_condition.name.value
        table = ENTITY_TABLES[type_name]
        for field in selection.selection_set.selections:
            if (not isinstance(field, FieldNode) or field.directives or field.arguments
                    or field.selection_set is not None):
                return None
            name = field.name.value
            if name not in table.fields and name not in ("id", "__typename"):
                return None
            order.append((type_name, (field.alias or field.name).value, name))
    # Response keys in first-seen order per type, as graphql-core collects fields; a key
    # selected twice (validation made both the same field) keeps its first place.
    for type_name in ENTITY_TABLES:
        seen: set[str] = set()
        for condition, key, name in order:
            if condition not in (None, type_name) or key in seen:
                continue
            seen.add(key)
            fields_by_type[type_name].append((key, name))
    return EntityPlan(
        variable=variable,
        response_key=(root.alias or root.name).value,
        fields_by_type={t: tuple(f) for t, f in fields_by_type.items()},
    )


def entity_plan(schema: GraphQLSchema, query: str, operation_name: str | None
                ) -> EntityPlan | None:
    """The compiled plan for `query`, or None when the schema must execute it."""
    return _compiled(schema, query, operation_name)
