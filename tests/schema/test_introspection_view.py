"""What a role's introspection schema holds (schema/introspection_view), without a server:
the policy's readable fields, the argument guards of SPEC rule 5, and the split of an
operation into its introspection and the rest."""

from __future__ import annotations

import pytest
from graphql import (
    GraphQLSchema,
    build_client_schema,
    get_introspection_query,
    graphql_sync,
    parse,
)

from policies import CompiledPolicy
from schema.introspection_view import IntrospectionViewError, role_schema
from schema.introspection_view.split import mentions_introspection, split_operation
from schema.root import argument_guards, build_schema

SCHEMA = build_schema(field_policy=None)


def _view(compiled: CompiledPolicy, role: str) -> GraphQLSchema:
    return role_schema(SCHEMA._schema, compiled.by_role[role].readable, argument_guards(), role)


@pytest.mark.parametrize("role", ["immigration_officer", "police", "district", "public",
                                  "auditor", "neighbourhood"])
def test_every_role_schema_is_valid_and_round_trips(compiled: CompiledPolicy, role: str
                                                    ) -> None:
    view = _view(compiled, role)
    result = graphql_sync(view, get_introspection_query(descriptions=True))
    assert result.errors is None
    build_client_schema(result.data)  # type: ignore[arg-type]


def test_police_see_no_identity_and_no_identity_filter(compiled: CompiledPolicy) -> None:
    view = _view(compiled, "police")
    assert "fullName" not in view.get_type("Foreigner").fields  # type: ignore[union-attr]
    assert "nationality" in view.get_type("Foreigner").fields  # type: ignore[union-attr]
    filters = view.get_type("ForeignerFilterInput").fields  # type: ignore[union-attr]
    assert "name" not in filters and "documentNumber" not in filters
    assert "checkForeigner" not in view.query_type.fields  # type: ignore[union-attr]
    assert view.get_type("AccessTrailEntry") is None


def test_a_role_that_may_read_nothing_gets_no_schema() -> None:
    with pytest.raises(IntrospectionViewError):
        role_schema(SCHEMA._schema, {}, argument_guards(), "nobody")


def test_without_a_caller_introspection_shows_the_whole_schema() -> None:
    """Tools and tests that build no caller context (no `access`) see the whole schema."""
    result = SCHEMA.execute_sync('{ __type(name: "AccessTrailEntry") { name } }')
    assert result.errors is None
    assert result.data == {"__type": {"name": "AccessTrailEntry"}}


def test_the_cheap_test_ignores_typename() -> None:
    assert not mentions_introspection("{ foreigners { nodes { __typename id } } }")
    assert mentions_introspection("{ __schema { types { name } } }")
    assert mentions_introspection('{ t: __type (name: "Area") { name } }')


def test_only_root_introspection_is_split() -> None:
    nested = parse("{ foreigners { nodes { __typename } } }")
    assert split_operation(nested, None) is None
    mutation = parse("mutation { submitReport(input: {}) { __typename } }")
    assert split_operation(mutation, None) is None


def test_a_mixed_operation_is_split_in_document_order() -> None:
    document = parse("""query Q($f: ForeignerFilterInput, $n: String!) {
        a: foreigners(filter: $f) { nodes { id } } ...R t: __type(name: $n) { name } __typename
    } fragment R on Query { __schema { queryType { name } } sisadaMe { role } }""")
    split = split_operation(document, "Q")
    assert split is not None and split.rest is not None
    assert split.keys == ("a", "__schema", "sisadaMe", "t", "__typename")
    introspection = split.introspection.definitions[0]
    # Only the variables the introspection uses: $f names a type the role may not see.
    assert [v.variable.name.value for v in introspection.variable_definitions] == ["n"]
    rest_text = str(split.rest.to_dict())
    assert "__schema" not in rest_text and "'__type'" not in rest_text
