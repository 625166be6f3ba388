"""An operation with introspection at its root, split in two parts that run against two
schemas (the role's and the whole), and their answers merged back in the document's order."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_operation_ast,
    visit,
)

# Root fields whose answer describes the schema (`__typename` does not: it is kept as is).
INTROSPECTION_ROOT_FIELDS = frozenset({"__schema", "__type"})
# No document can introspect at its root without one of these words.
_MENTIONS = re.compile(r"__(?:schema|type)\b")


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
        names = _variables_used([new_operation.selection_set, *(operation.directives or ()),
                                 *kept_fragments, *others])
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
