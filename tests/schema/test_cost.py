"""The cost estimate multiplies by the rows a list can return (SPEC rule 9), and the
execution budget stops CPU-bound execution and leaves the event loop to others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry
from graphql import FragmentDefinitionNode, OperationDefinitionNode, get_introspection_query, parse

from schema.budget import BudgetedExecutor, ExecutionBudget, ExecutionStoppedError
from schema.cost import (
    AWAITED_FIELD_WEIGHT,
    COUNT_WEIGHT,
    MAX_PAGE_ITEMS,
    STATEMENT_WEIGHT,
    CostEstimator,
    bounded,
    unbounded_list_fields,
)
from schema.foreigners import MAX_PERMITS
from schema.limits import QueryLimits
from schema.root import build_schema

SCHEMA = build_schema()._schema
LIMIT = QueryLimits().max_cost


def estimate(query: str, variables: dict[str, Any] | None = None) -> int:
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return CostEstimator(SCHEMA, fragments, operation, variables).operation(operation)


def test_a_page_multiplies_its_nodes_by_first() -> None:
    ten = estimate("{ foreigners(first: 10) { nodes { id nationality } } }")
    thousand = estimate("{ foreigners(first: 1000) { nodes { id nationality } } }")
    # foreigners runs its own statement + nodes (1) + rows x 2 fields
    assert ten == STATEMENT_WEIGHT + 1 + 10 * 2
    assert thousand == STATEMENT_WEIGHT + 1 + 1000 * 2


def test_first_from_a_variable_and_the_default() -> None:
    by_variable = estimate("query($n: Int!) { foreigners(first: $n) { nodes { id } } }",
                           {"n": 7})
    by_default = estimate("{ foreigners { nodes { id } } }")
    unknown = estimate("query($n: Int!) { foreigners(first: $n) { nodes { id } } }")
    assert by_variable == STATEMENT_WEIGHT + 1 + 7
    assert by_default == STATEMENT_WEIGHT + 1 + 50
    assert unknown == STATEMENT_WEIGHT + 1 + MAX_PAGE_ITEMS


def test_nested_lists_multiply_by_their_declared_bound() -> None:
    one = estimate("{ foreigners(first: 1) { nodes { permits { number } } } }")
    assert one == STATEMENT_WEIGHT + 1 + (AWAITED_FIELD_WEIGHT + MAX_PERMITS * 1)


def test_fragments_and_aliases_count_as_they_execute() -> None:
    plain = estimate("{ a: foreigners(first: 100) { nodes { id } } }")
    twice = estimate("{ a: foreigners(first: 100) { ...F } b: foreigners(first: 100) { ...F } }"
                     " fragment F on ForeignerConnection { nodes { id } }")
    assert twice == 2 * plain


def test_areas_bound_follows_its_arguments() -> None:
    kecamatan = estimate('{ areas(level: KECAMATAN) { code } }')
    every = estimate("{ areas { code } }")
    assert kecamatan < every
    assert every > 1000


def test_entities_count_their_representations() -> None:
    query = ("query($r: [_Any!]!) { _entities(representations: $r) "
             "{ ... on Foreigner { id nationality } } }")
    small = estimate(query, {"r": [{"__typename": "Foreigner", "id": "1"}] * 2})
    large = estimate(query, {"r": [{"__typename": "Foreigner", "id": "1"}] * 200})
    # Each representation is loaded (awaited) besides its selection.
    assert large - small == 198 * (2 + AWAITED_FIELD_WEIGHT)


def test_statements_and_counts_weigh_what_they_scan() -> None:
    # A hostile review batched 300 aliased counts of cost 20 each: 15 s of SQL.
    counted = estimate("{ foreigners(first: 1) { totalCount nodes { id } } }")
    assert counted == STATEMENT_WEIGHT + COUNT_WEIGHT + 1 + 1
    aliased = "{ " + " ".join(f"a{i}: foreigners(first: 1) {{ totalCount }}"
                              for i in range(30)) + " }"
    assert estimate(aliased) > LIMIT


def test_fields_the_caller_cannot_read_cost_nothing_below_them() -> None:
    query = "{ areas { code byNationality { key count } } }"
    readable = {"Query": frozenset({"areas"}), "Area": frozenset({"code"})}
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    hidden = CostEstimator(SCHEMA, {}, operation, None, readable).operation(operation)
    assert hidden == STATEMENT_WEIGHT + 5000 * (1 + 1)
    assert estimate(query) > 100 * hidden


def test_issue_8s_fan_out_is_far_over_the_limit() -> None:
    attack = ("{ foreigners(first: 1000) { nodes { residence { area { parent { parent { "
              "children { children { code } } } } } } } } }")
    assert len(attack) < 180
    assert estimate(attack) > 5 * LIMIT  # ~2.5 million


@pytest.mark.parametrize("query", [
    # A frontend's full list: 1,000 rows with residence, area and permits.
    """{ foreigners(first: 1000) { totalCount pageInfo { endCursor hasNextPage } nodes {
        id fullName passportNumber birthDate nationality sex ageBand permitType permitStatus
        permitExpiresOn sponsorType residence { streetAddress areaCode latitude longitude
        area { code name level } } permits { number permitType status issuedOn expiresOn
        sponsorType } } } }""",
    # The supervisor's dashboard.
    """{ areas(level: KECAMATAN) { code name foreignerCount byNationality { key count }
        byPermitType { key count } }
        activities(first: 200) { nodes { id kind occurredAt areaCode latitude longitude
        officer { id name } } }
        reports(first: 200) { nodes { id category text areaCode status createdAt } } }""",
    get_introspection_query(descriptions=True),
])
def test_real_frontend_queries_are_within_the_default_limit(query: str) -> None:
    assert estimate(query) <= LIMIT


def test_every_list_field_of_the_schema_declares_a_bound() -> None:
    assert unbounded_list_fields(SCHEMA) == []


def test_a_list_field_without_a_bound_is_reported() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def unbounded(self) -> list[int]:
            return []

        @strawberry.field(metadata=bounded(3))
        def bounded_list(self) -> list[int]:
            return []

    schema = strawberry.Schema(query=Query)
    assert unbounded_list_fields(schema._schema) == ["Query.unbounded"]


# -- the execution budget ---------------------------------------------------------


@strawberry.type
class Row:
    a: int
    b: int


@strawberry.type
class Heavy:
    @strawberry.field(metadata=bounded(100_000))
    def rows(self) -> list[Row]:
        return [Row(a=i, b=i) for i in range(20_000)]


HEAVY = strawberry.Schema(query=Heavy, execution_context_class=BudgetedExecutor)


@strawberry.type
class Texts:
    @strawberry.field(metadata=bounded(100))
    def texts(self) -> list[str]:
        return ["\U0001d54f" * 400] * 100  # 1,600 bytes of UTF-8 each


TEXTS = strawberry.Schema(query=Texts, execution_context_class=BudgetedExecutor)


class Context:
    def __init__(self, budget: ExecutionBudget) -> None:
        self.budget = budget


async def test_cpu_bound_execution_stops_at_the_deadline() -> None:
    budget = ExecutionBudget(max_cost=10**9, max_fields=10**9, timeout_seconds=0)
    with pytest.raises(ExecutionStoppedError) as stopped:
        await HEAVY.execute("{ rows { a b } }", context_value=Context(budget))
    assert stopped.value.code == "TIMEOUT"
    assert budget.fields < 1000  # stopped at the first check, not after 40,000 fields


async def test_execution_stops_at_the_text_cap() -> None:
    budget = ExecutionBudget(max_cost=10**9, max_fields=10**9, timeout_seconds=60,
                             max_text_bytes=1000)
    with pytest.raises(ExecutionStoppedError) as stopped:
        await TEXTS.execute("{ texts }", context_value=Context(budget))
    assert stopped.value.code == "RESPONSE_TOO_LARGE"
    assert budget.text_bytes < 1000 + 4 * 400


async def test_execution_stops_at_the_field_cap() -> None:
    budget = ExecutionBudget(max_cost=10**9, max_fields=5000, timeout_seconds=60)
    with pytest.raises(ExecutionStoppedError) as stopped:
        await HEAVY.execute("{ rows { a b } }", context_value=Context(budget))
    assert stopped.value.code == "RESPONSE_TOO_LARGE"
    assert budget.fields < 5000 + 300


async def test_a_long_execution_leaves_the_event_loop_to_others() -> None:
    budget = ExecutionBudget(max_cost=10**9, max_fields=10**9, timeout_seconds=60)
    ticks = 0
    done = asyncio.Event()

    async def other_request() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    before = ticks
    result = await HEAVY.execute("{ a: rows { a b } b: rows { a b } c: rows { a b } }",
                                 context_value=Context(budget))
    done.set()
    await other
    assert result.errors is None
    assert len(result.data["c"]) == 20_000
    # 120,000 fields take well over a slice: the other task ran while they executed.
    assert ticks - before > 1
