"""Query limits and schema exposure, enforced while the document is validated.

Depth, cost (what the document can make the server resolve, lists multiplied by the
rows they can return: schema/cost.py) and aliases are measured on the parsed document
before anything runs, so a flood costs the server one parse and one walk. The cost of
the operations of one request adds up against one budget (schema/budget.py), which
also bounds the execution itself. Parser tokens are capped while
parsing. Introspection and "Did you mean …?" suggestions are schema exposure:
introspection follows configuration, suggestions the policy's schema-hints rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

from schema.budget import ExecutionBudget
from schema.cost import CostEstimator

Introspection = Literal["on", "authenticated", "off"]


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 12
    max_cost: int = 250_000
    max_aliases: int = 30
    max_tokens: int = 4000
    introspection: Introspection = "on"


# GraphiQL's standard introspection query nests `ofType` about 15 deep: introspection
# subtrees get a depth limit of their own instead of the limit for data.
MAX_INTROSPECTION_DEPTH = 20


@dataclass(slots=True)
class _Measure:
    depth: int = 0
    aliases: int = 0
    introspection_depth: int = 0


class _Walker:
    """Measures selection sets, expanding fragment spreads where they are used."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, _Measure] = {}

    def measure(self, selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()
                ) -> _Measure:
        total = _Measure()
        if selection_set is None:
            return total
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                child = self.measure(selection.selection_set, seen)
                total.aliases += child.aliases + (1 if selection.alias else 0)
                if selection.name.value.startswith("__"):
                    nested = 1 + max(child.depth, child.introspection_depth)
                    total.introspection_depth = max(total.introspection_depth, nested)
                else:
                    total.depth = max(total.depth, 1 + child.depth)
                    total.introspection_depth = max(total.introspection_depth,
                                                    child.introspection_depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                child = self.measure(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                child = self._fragment(selection.name.value, seen)
            else:
                continue
            total.aliases += child.aliases
            total.depth = max(total.depth, child.depth)
            total.introspection_depth = max(total.introspection_depth, child.introspection_depth)
        return total

    def _fragment(self, name: str, seen: frozenset[str]) -> _Measure:
        if name in seen or name not in self.fragments:
            return _Measure()  # cycles and unknown fragments are other rules' errors
        if name not in self.memo:
            self.memo[name] = self.measure(self.fragments[name].selection_set, seen | {name})
        return self.memo[name]


def limits_rule(limits: QueryLimits) -> type[ASTValidationRule]:
    class QueryLimitsRule(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = {
                d.name.value: d for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            self.fragments = fragments
            self.walker = _Walker(fragments)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            measured = self.walker.measure(node.selection_set)
            too_deep = (measured.depth > limits.max_depth
                        or measured.introspection_depth > MAX_INTROSPECTION_DEPTH)
            if measured.depth > limits.max_depth:
                self._report(f"query depth {measured.depth} exceeds {limits.max_depth}",
                             "QUERY_TOO_DEEP", node)
            if measured.introspection_depth > MAX_INTROSPECTION_DEPTH:
                self._report(f"introspection depth {measured.introspection_depth} exceeds "
                             f"{MAX_INTROSPECTION_DEPTH}", "QUERY_TOO_DEEP", node)
            if not too_deep:  # one answer is enough; a deep document is refused anyway
                self._check_cost(node)
            if measured.aliases > limits.max_aliases:
                self._report(f"query uses {measured.aliases} aliases, more than "
                             f"{limits.max_aliases}", "TOO_MANY_ALIASES", node)

        def _check_cost(self, node: OperationDefinitionNode) -> None:
            variables, budget, operation_name = _REQUEST.get()
            readable = getattr(budget, "readable", None)
            estimate = CostEstimator(self.context.schema, self.fragments, node,
                                     variables, readable).operation(node)
            limit = budget.max_cost if budget is not None else limits.max_cost
            total = estimate
            executes = operation_name is None or (node.name and node.name.value
                                                  == operation_name)
            if budget is not None and executes:
                # Only the operation that runs spends the request's budget.
                total = budget.charge(estimate)
            if estimate > limit:
                self._report(f"query cost {estimate} exceeds the limit {limit} (a list "
                             "counts its rows: lower `first`, or select less per row)",
                             "QUERY_TOO_COMPLEX", node)
            elif total > limit:
                self._report(f"the operations of this request cost {total} together, more "
                             f"than the limit {limit}", "QUERY_TOO_COMPLEX", node)

        def _report(self, message: str, code: str, node: OperationDefinitionNode) -> None:
            self.report_error(GraphQLError(message, node, extensions={"code": code}))

    return QueryLimitsRule


# The variables and budget of the operation being validated (validation rules see only the
# document). Set per operation, in the operation's own task.
_REQUEST: ContextVar[tuple[Mapping[str, Any] | None, ExecutionBudget | None, str | None]] = (
    ContextVar("sisada_cost_request", default=(None, None, None)))


def _introspection_allowed(mode: Introspection, authenticated: bool) -> bool:
    if mode == "on":
        return True
    return mode == "authenticated" and authenticated


class QueryLimitsExtension(SchemaExtension):
    """Adds the limit rules (and, where it is off, the no-introspection rule) per request."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits
        self.rule = limits_rule(limits)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.limits.max_tokens
        _REQUEST.set((context.variables, getattr(context.context, "budget", None),
                      context.operation_name))
        rules: tuple[type[ASTValidationRule], ...] = (self.rule,)
        authenticated = bool(getattr(context.context, "authenticated", False))
        if not _introspection_allowed(self.limits.introspection, authenticated):
            rules += (NoSchemaIntrospectionCustomRule,)
        context.validation_rules = context.validation_rules + rules
        yield


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(message: str) -> str:
    """graphql-core's 'Did you mean …?' hints name fields; not everyone may learn them."""
    return _SUGGESTION.sub("", message)
