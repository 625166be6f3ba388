"""Per-role introspection (issue 12 §3): over real HTTP, each role's `__schema` shows the
root fields it may call and the types and fields it may read — as the compiled policy says,
nothing more and nothing less — while `_service { sdl }` stays whole for routers, and a
field hidden from introspection still answers as before when selected."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PERSONAS, Deployment, ServerThread
from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    get_introspection_query,
    get_named_type,
    is_required_argument,
)

from gateway.app import create_app
from schema.root import argument_guards

# Introspection does not touch the database: one backend is enough.
pytestmark = pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)

STANDARD = get_introspection_query()
# What GraphiQL sends (graphql-js getIntrospectionQuery with its options on).
GRAPHIQL = get_introspection_query(descriptions=True, specified_by_url=True,
                                   directive_is_repeatable=True, schema_description=True,
                                   input_value_deprecation=True)
ROOTS = ("Query", "Mutation", "Subscription")


def _roles(deployment: Deployment) -> list[str]:
    return sorted(deployment.app.state.sisada.policy.compiled.by_role)


def _persona(role: str) -> str:
    """The first persona of `role`: every role of the policy must have one."""
    found = [name for name, (persona_role, _, _) in PERSONAS.items() if persona_role == role]
    assert found, f"no persona for the policy's role {role!r} (tests/conftest.py)"
    return found[0]


def _readable(deployment: Deployment, role: str) -> Mapping[str, frozenset[str]]:
    return deployment.app.state.sisada.policy.compiled.by_role[role].readable


def _post(deployment: Deployment, role: str, query: str, **variables: Any) -> httpx.Response:
    response = deployment.post(query, _persona(role), variables or None)
    assert response.status_code == 200, response.text
    return response


def _introspection(deployment: Deployment, role: str, query: str = STANDARD) -> dict[str, Any]:
    body = _post(deployment, role, query).json()
    assert "errors" not in body, body
    return body["data"]


def _objects(data: dict[str, Any]) -> dict[str, set[str]]:
    return {t["name"]: {f["name"] for f in t["fields"]} for t in data["__schema"]["types"]
            if t["kind"] == "OBJECT" and not t["name"].startswith("__")}


def _expected_objects(schema: GraphQLSchema, readable: Mapping[str, frozenset[str]]
                      ) -> dict[str, set[str]]:
    """The object types a role can reach from the root fields it may call, with the fields
    it may read — leaving out a field whose type has nothing readable (it could select
    nothing), or whose required argument reveals a field it may not read."""
    guards = argument_guards().arguments
    objects = {n: t for n, t in schema.type_map.items()
               if isinstance(t, GraphQLObjectType) and not n.startswith("__")}
    shown = {n: {f for f in t.fields if f in readable.get(n, ())} for n, t in objects.items()}

    def has_readable(type_: Any) -> bool:
        named = get_named_type(type_)
        if isinstance(named, GraphQLObjectType):
            return bool(shown[named.name])
        if isinstance(named, GraphQLUnionType):
            return any(shown[member.name] for member in named.types)
        return True

    def arguments_usable(type_name: str, field: Any, field_name: str) -> bool:
        for name, argument in field.args.items():
            pair = guards.get((type_name, field_name, name))
            if is_required_argument(argument) and pair and pair[1] not in readable.get(
                    pair[0], ()):
                return False
        return True

    changed = True
    while changed:
        changed = False
        for name, type_ in objects.items():
            kept = {f for f in shown[name] if has_readable(type_.fields[f].type)
                    and arguments_usable(name, type_.fields[f], f)}
            changed |= kept != shown[name]
            shown[name] = kept
    reachable: set[str] = set()
    pending = [root for root in ROOTS if root in objects and shown[root]]
    while pending:
        name = pending.pop()
        if name in reachable:
            continue
        reachable.add(name)
        for field_name in shown[name]:
            named = get_named_type(objects[name].fields[field_name].type)
            members = named.types if isinstance(named, GraphQLUnionType) else [named]
            pending += [m.name for m in members if m.name in objects and shown[m.name]]
    return {name: shown[name] for name in reachable}


def test_every_role_sees_exactly_what_the_policy_lets_it_read(deployment: Deployment) -> None:
    schema = deployment.app.state.sisada.schema._schema
    for role in _roles(deployment):
        readable = _readable(deployment, role)
        shown = _objects(_introspection(deployment, role))
        # Nothing extra: every type and field shown is one the policy lets the role read.
        for type_name, fields in shown.items():
            assert fields <= readable.get(type_name, frozenset()), (role, type_name)
        # Nothing readable hidden: every readable field of a type the role can reach.
        assert shown == _expected_objects(schema, readable), role


def test_root_fields_shown_are_those_the_role_may_call(deployment: Deployment) -> None:
    schema = deployment.app.state.sisada.schema._schema
    for role in _roles(deployment):
        readable = _readable(deployment, role)
        data = _introspection(deployment, role)["__schema"]
        shown = _objects({"__schema": data})
        for root in ROOTS:
            key = f"{root[0].lower()}{root[1:]}Type"
            callable_ = readable.get(root, frozenset())
            if data[key] is None:
                assert root not in shown and not callable_, (role, root)
                continue
            assert data[key]["name"] == root
            assert shown[root] <= callable_, (role, root)
            # A root field the role may call is hidden only when it could select nothing:
            # its type (every member of a union) has no field the role may read.
            for name in callable_ - shown[root]:
                named = get_named_type(schema.get_type(root).fields[name].type)
                members = named.types if isinstance(named, GraphQLUnionType) else [named]
                assert all(isinstance(m, GraphQLObjectType) and not readable.get(m.name)
                           for m in members), (role, root, name)


def test_the_policy_grants_different_contracts(deployment: Deployment) -> None:
    """The comparison above is not vacuous: the roles' views differ as the policy does."""
    public = _objects(_introspection(deployment, "public"))
    police = _objects(_introspection(deployment, "police"))
    officer = _objects(_introspection(deployment, "immigration_officer"))
    assert "Foreigner" not in public and "checkForeigner" not in public["Query"]
    assert "fullName" not in police["Foreigner"] and "nationality" in police["Foreigner"]
    assert {"fullName", "passportNumber"} <= officer["Foreigner"]
    assert "checkForeigner" in officer["Query"]


def test_identity_field_names_are_not_in_the_public_or_police_introspection(
    deployment: Deployment,
) -> None:
    policy = deployment.app.state.sisada.policy.policy
    identity = sorted(f for t, f in policy.recorded_fields() if t == "Foreigner")
    assert "fullName" in identity and "passportNumber" in identity
    public = _post(deployment, "public", STANDARD).content
    police = _post(deployment, "police", STANDARD).content
    officer = _post(deployment, "immigration_officer", STANDARD).content
    for name in identity:
        quoted = f'"{name}"'.encode()
        assert quoted not in public and quoted not in police, name
        assert quoted in officer, name
    assert b'"Foreigner"' not in public and b'"AccessTrailEntry"' not in public


def test_hidden_type_is_null_in_type_lookup(deployment: Deployment) -> None:
    query = "query($name: String!) { __type(name: $name) { name fields { name } } }"
    body = _post(deployment, "public", query, name="Foreigner").json()
    assert body == {"data": {"__type": None}}
    body = _post(deployment, "police", query, name="AccessTrailEntry").json()
    assert body == {"data": {"__type": None}}
    police = _post(deployment, "police", query, name="Foreigner").json()["data"]["__type"]
    names = {f["name"] for f in police["fields"]}
    assert "nationality" in names and "fullName" not in names


def test_arguments_that_reveal_unreadable_fields_are_hidden(deployment: Deployment) -> None:
    """SPEC rule 5: a filter, sort or search by a field the role may not read is FORBIDDEN,
    so it is not part of the role's contract either."""
    guards = argument_guards()
    for role in _roles(deployment):
        readable = _readable(deployment, role)
        types = {t["name"]: t for t in _introspection(deployment, role)["__schema"]["types"]}

        def reads(pair: tuple[str, str]) -> bool:
            return pair[1] in readable.get(pair[0], ())  # noqa: B023 (used in this loop only)

        for (type_name, name), pair in guards.input_fields.items():
            if type_name in types:
                shown = {f["name"] for f in types[type_name]["inputFields"]}
                assert (name in shown) == reads(pair), (role, type_name, name)
        for (type_name, name), pair in guards.enum_values.items():
            if type_name in types:
                shown = {v["name"] for v in types[type_name]["enumValues"]}
                assert (name in shown) == reads(pair), (role, type_name, name)
        for (type_name, field_name, name), pair in guards.arguments.items():
            fields = {f["name"]: f for f in (types.get(type_name) or {}).get("fields") or ()}
            if field_name in fields:
                shown = {a["name"] for a in fields[field_name]["args"]}
                assert (name in shown) == reads(pair), (role, field_name, name)
    police = {t["name"]: t for t in _introspection(deployment, "police")["__schema"]["types"]}
    assert {"nationality", "areaCode"} <= {f["name"] for f in
                                           police["ForeignerFilterInput"]["inputFields"]}
    assert "name" not in {f["name"] for f in police["ForeignerFilterInput"]["inputFields"]}


def test_a_hidden_field_still_answers_as_before(deployment: Deployment) -> None:
    """Introspection changes what is shown, not what runs: existing frontends that select a
    field hidden from their role get null and the redaction notice, and a hidden filter is
    still FORBIDDEN (not a validation error)."""
    body = deployment.gql("{ foreigners(first: 2) { nodes { id fullName } } }",
                          "setiabudi_police")
    assert "errors" not in body
    assert all(n["fullName"] is None for n in body["data"]["foreigners"]["nodes"])
    assert "fullName" in body["extensions"]["redacted"]["Foreigner"]
    body = deployment.gql('{ foreigners(filter: {name: "ab"}) { nodes { id } } }',
                          "setiabudi_police")
    assert len(body["errors"]) == 1
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_introspection_mixed_with_data_keeps_order_and_both_answers(
    deployment: Deployment,
) -> None:
    query = """query Mixed { sisadaMe { role } ...Root t: __type(name: "Foreigner") { name }
               areas(level: KECAMATAN) { code } __typename }
               fragment Root on Query { __schema { queryType { fields { name } } } }"""
    response = _post(deployment, "public", query)
    body = response.json()
    assert "errors" not in body, body
    assert list(body["data"]) == ["sisadaMe", "__schema", "t", "areas", "__typename"]
    assert body["data"]["sisadaMe"] == {"role": "public"}
    assert body["data"]["t"] is None and body["data"]["__typename"] == "Query"
    assert body["data"]["areas"]
    fields = {f["name"] for f in body["data"]["__schema"]["queryType"]["fields"]}
    assert fields == _objects(_introspection(deployment, "public"))["Query"]
    assert b"foreigners" not in response.content


def test_a_hidden_filter_beside_introspection_is_still_forbidden(deployment: Deployment
                                                                 ) -> None:
    """The variable's type is shown to the police without `name`: the data part still runs
    against the whole schema and refuses the filter as before; the introspection answers."""
    query = """query($f: ForeignerFilterInput, $n: String!) {
        foreigners(filter: $f) { nodes { id } } t: __type(name: $n) { inputFields { name } } }"""
    body = _post(deployment, "police", query, f={"name": "ab"},
                 n="ForeignerFilterInput").json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["data"]["foreigners"] is None
    shown = {f["name"] for f in body["data"]["t"]["inputFields"]}
    assert "nationality" in shown and "name" not in shown


def test_graphiql_builds_a_client_schema_for_every_role(deployment: Deployment) -> None:
    for role in _roles(deployment):
        client = build_client_schema(_introspection(deployment, role, GRAPHIQL))
        assert client.query_type is not None and client.query_type.name == "Query"


def test_service_sdl_stays_whole_for_routers(deployment: Deployment) -> None:
    query = "{ _service { sdl } }"
    public = deployment.gql(query, "public")["data"]["_service"]["sdl"]
    supervisor = deployment.gql(query, "immigration_supervisor")["data"]["_service"]["sdl"]
    assert public == supervisor
    assert "fullName" in public and "accessTrail" in public and "passportNumber" in public




def _foreigner_fields(base_url: str, token: str | None) -> set[str] | None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{base_url}/graphql", headers=headers, json={
        "query": '{ __type(name: "Foreigner") { fields { name } } }'})
    assert response.status_code == 200, response.text
    found = response.json()["data"]["__type"]
    return None if found is None else {f["name"] for f in found["fields"]}


def test_a_policy_reload_changes_the_introspection(
    deployment: Deployment, editable_gateway: tuple[str, Any, Path]
) -> None:
    base_url, app, policy_dir = editable_gateway
    token = deployment.token("setiabudi_police")
    before = _foreigner_fields(base_url, token)
    assert before is not None and "sex" in before

    foreigners = policy_dir / "foreigners.polar"
    text = foreigners.read_text()
    assert '"sex", ' in text
    foreigners.write_text(text.replace('"sex", ', "", 1))
    assert app.state.sisada.reload_policy() is True

    after = _foreigner_fields(base_url, token)
    assert after == before - {"sex"}


def test_the_introspection_setting_applies_first(deployment: Deployment, tmp_path: Path
                                                 ) -> None:
    app = create_app(deployment.settings_with(tmp_path, introspection="authenticated"))
    with ServerThread(app) as base_url:
        response = httpx.post(f"{base_url}/graphql", json={"query": STANDARD})
        assert response.status_code == 200
        errors = response.json()["errors"]
        assert {e["extensions"]["code"] for e in errors} == {"INTROSPECTION_DISABLED"}
        police = _foreigner_fields(base_url, deployment.token("setiabudi_police"))
        assert police is not None and "nationality" in police and "fullName" not in police
