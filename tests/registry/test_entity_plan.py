"""The registry's compiled entity fetch (examples/registry/entity_plan.py) answers exactly as
its schema does: every document the plan takes is also executed by Strawberry over the same
database and the two answers compared byte for byte; every document it must not take goes
to Strawberry (errors included)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_registry_http import BULK, PERMITS, PERSONS, TOKEN

from examples.registry import create_registry_app, migrate_registry, write_identities
from examples.registry.entity_plan import entity_plan
from examples.registry.schema import RegistryContext, build_registry_schema
from resolvers.db import create_engine

MIXED = [
    {"__typename": "PermitDocument", "id": "203"},
    {"__typename": "Person", "id": "12"},
    {"__typename": "Person", "id": "999999"},
    {"__typename": "Person", "id": "11"},
    {"__typename": "Person", "id": "eleven"},
    {"__typename": "Person", "id": "12"},
    {"__typename": "PermitDocument", "id": "201"},
    {"__typename": "PermitDocument"},
    {"__typename": "PermitDocument", "id": "202"},
]
THOUSAND = [{"__typename": "Person", "id": str(p["id"])} for p in BULK]

# Flat documents: the plan answers them.
PLANNED = [
    # What the gateway sends (gateway/registry/queries.py entities_document).
    "query SisadaIdentity($representations: [_Any!]!) { _entities(representations: "
    "$representations) { ... on Person { fullName passportNumber } } }",
    "query SisadaIdentity($representations: [_Any!]!) { _entities(representations: "
    "$representations) { ... on PermitDocument { number sponsorName } "
    "... on Person { birthDate fullName passportNumber photoUrl } } }",
    # Aliases, __typename at both levels, id, a field twice, fields in another order.
    "query($r: [_Any!]!) { e: _entities(representations: $r) { kind: __typename "
    "... on Person { photoUrl name: fullName id __typename birthDate fullName } "
    "... on PermitDocument { id sponsorName number id } } }",
    # A fragment for one type only: the other type's entities are empty objects.
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on PermitDocument "
    "{ number } } }",
    # The same type in two fragments, a key shared with __typename's position.
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { fullName } "
    "__typename ... on Person { passportNumber fullName } } }",
]
# Documents the plan must leave to the schema.
UNPLANNED = [
    "query($r: [_Any!]!, $s: Boolean!) { _entities(representations: $r) "
    "{ ... on Person { fullName @skip(if: $s) } } }",
    "query($r: [_Any!]!) { _entities(representations: $r) { ...P } } "
    "fragment P on Person { fullName }",
    "query($r: [_Any!]!) { _entities(representations: $r) { ... { __typename } } }",
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { fullName } } "
    "__typename }",
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { nope } } }",
    "query { _entities(representations: [{__typename: \"Person\", id: \"11\"}]) "
    "{ ... on Person { fullName } } }",
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { fullName } } ",
    "query A($r: [_Any!]!) { _entities(representations: $r) { ... on Person { fullName } } } "
    "query B { __typename }",
    "{ personsByDocument(number: \"BR4410021\") { fullName } }",
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('plan') / 'registry.db'}"

    async def prepare() -> None:
        await migrate_registry(url)
        await write_identities(url, PERSONS + BULK, PERMITS)

    asyncio.run(prepare())
    yield url


def both_answers(url: str, query: str, variables: dict[str, Any] | None,
                 operation_name: str | None = None) -> tuple[bytes, bytes, bool]:
    """The app's answer (plan or schema, whichever it takes), Strawberry's own answer,
    and whether the app had a plan for the document."""
    import httpx

    async def run() -> tuple[bytes, bytes, bool]:
        app = create_registry_app(url, TOKEN)
        schema = build_registry_schema()
        engine = create_engine(url)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
                response = await client.post(
                    "/graphql", headers={"authorization": f"Bearer {TOKEN}"},
                    json={"query": query, "variables": variables,
                          "operationName": operation_name})
            result = await schema.execute(query, variable_values=variables,
                                          context_value=RegistryContext(engine=engine),
                                          operation_name=operation_name)
        finally:
            await engine.dispose()
        expected: dict[str, Any] = {"data": result.data}
        if result.errors:
            expected["errors"] = [error.formatted for error in result.errors]
        planned = entity_plan(schema._schema, query, operation_name) is not None
        return response.content, orjson.dumps(expected), planned

    return asyncio.run(run())


@pytest.mark.parametrize("query", PLANNED)
@pytest.mark.parametrize("representations", [MIXED, THOUSAND, []],
                         ids=["mixed", "thousand", "none"])
def test_planned_document_answers_byte_for_byte_as_the_schema(
        database: str, query: str, representations: list[dict[str, Any]]) -> None:
    variable = "representations" if "$representations" in query else "r"
    answer, expected, planned = both_answers(database, query, {variable: representations})
    assert planned
    assert answer == expected
    assert b'"errors"' not in answer


@pytest.mark.parametrize("query", UNPLANNED)
def test_other_documents_are_left_to_the_schema(database: str, query: str) -> None:
    answer, expected, planned = both_answers(database, query,
                                             {"r": MIXED[:3], "s": False})
    assert not planned
    assert answer == expected


@pytest.mark.parametrize("representations", [
    [{"__typename": "Nobody", "id": "1"}],
    [None],
    ["Person:11"],
    [{"__typename": "Person", "id": str(n)} for n in range(5001)],
], ids=["unknown-type", "null", "not-an-object", "too-many"])
def test_representations_the_plan_cannot_answer_get_the_schemas_error(
        database: str, representations: list[Any]) -> None:
    answer, expected, planned = both_answers(database, PLANNED[0],
                                             {"representations": representations})
    assert planned
    assert answer == expected
    assert b'"errors"' in answer


def test_operation_name_that_names_no_operation_is_a_bad_request(database: str) -> None:
    import httpx

    async def run() -> httpx.Response:
        app = create_registry_app(database, TOKEN)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
            return await client.post(
                "/graphql", headers={"authorization": f"Bearer {TOKEN}"},
                json={"query": PLANNED[0], "variables": {"representations": MIXED},
                      "operationName": "Other"})

    response = asyncio.run(run())
    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]
    assert b"Maria" not in response.content


def test_plan_is_compiled_once_per_document() -> None:
    schema = build_registry_schema()._schema
    assert entity_plan(schema, PLANNED[0], None) is entity_plan(schema, PLANNED[0], None)


def test_plans_live_beside_the_registry() -> None:
    # The gateway depends only on the Federation protocol: nothing of the plan is imported
    # outside the stand-in.
    root = Path(__file__).resolve().parents[2]
    users = [p for p in root.glob("*/**/*.py")
             if ".venv" not in p.parts and "tests" not in p.parts
             and "entity_plan" in p.read_text(encoding="utf-8")]
    assert {p.relative_to(root).parts[0] for p in users} == {"examples"}
