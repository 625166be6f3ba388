"""Federation over real HTTP: `_service` publishes the subgraph SDL, and `_entities` is one
more path to a record — it reloads every entity under the caller's row scope and field
policy, ignores whatever else the representation carries, and answers an out-of-scope
record exactly like a missing one (SPEC rules 4 and 5)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import SETIABUDI, TEBET, Deployment, ServerThread

from gateway.app import create_app

FOREIGNER_ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on Foreigner { id fullName nationality } }
}
"""

AREA_ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on Area { code name level } }
}
"""


def _foreigner(deployment: Deployment, foreigner_id: int) -> dict[str, Any]:
    return next(f for f in deployment.facts.foreigners if f["id"] == foreigner_id)


def _one_living_in(deployment: Deployment, area: str) -> dict[str, Any]:
    return _foreigner(deployment, min(deployment.facts.in_area(area)))


def _missing_id(deployment: Deployment) -> int:
    return max(f["id"] for f in deployment.facts.foreigners) + 100_000


def _entities(deployment: Deployment, persona: str, *representations: dict[str, Any]
              ) -> httpx.Response:
    response = deployment.post(FOREIGNER_ENTITIES, persona, {"reps": list(representations)})
    assert response.status_code == 200, response.text
    return response


def _ref(foreigner_id: int, **extra: Any) -> dict[str, Any]:
    return {"__typename": "Foreigner", "id": str(foreigner_id), **extra}


def test_service_sdl_declares_entity_keys_as_public(deployment: Deployment) -> None:
    body = deployment.gql("{ _service { sdl } }", "public")
    assert "errors" not in body
    sdl = body["data"]["_service"]["sdl"]
    assert "@key" in sdl
    assert "type Foreigner" in sdl
    assert "type Area" in sdl


def test_entities_reload_in_scope_without_name_as_police(deployment: Deployment) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    response = _entities(deployment, "setiabudi_police", _ref(foreigner["id"]))
    body = response.json()
    assert "errors" not in body
    assert body["data"]["_entities"] == [
        {"id": str(foreigner["id"]), "fullName": None, "nationality": foreigner["nationality"]}
    ]
    assert "fullName" in body["extensions"]["redacted"]["Foreigner"]
    assert foreigner["full_name"].encode() not in response.content


def test_entities_out_of_scope_answers_like_missing_as_police(deployment: Deployment) -> None:
    tebet_id = _one_living_in(deployment, TEBET)["id"]
    out_of_scope = _entities(deployment, "setiabudi_police", _ref(tebet_id))
    missing = _entities(deployment, "setiabudi_police", _ref(_missing_id(deployment)))
    assert out_of_scope.json()["data"]["_entities"] == [None]
    # Byte for byte: the ids travel in the variables, so the answers must not differ at all.
    assert out_of_scope.content == missing.content


def test_entities_ignore_injected_fields_as_police(deployment: Deployment) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    injected = _ref(foreigner["id"], fullName="INJECTED", nationality="XXX")
    response = _entities(deployment, "setiabudi_police", injected)
    body = response.json()
    assert "errors" not in body
    assert body["data"]["_entities"] == [
        {"id": str(foreigner["id"]), "fullName": None, "nationality": foreigner["nationality"]}
    ]
    assert b"INJECTED" not in response.content


def test_entities_ignore_injected_fields_as_immigration_officer(deployment: Deployment) -> None:
    foreigner = _one_living_in(deployment, TEBET)
    injected = _ref(foreigner["id"], fullName="INJECTED", nationality="XXX")
    response = _entities(deployment, "immigration_officer", injected)
    assert response.json()["data"]["_entities"] == [
        {"id": str(foreigner["id"]), "fullName": foreigner["full_name"],
         "nationality": foreigner["nationality"]}
    ]
    assert b"INJECTED" not in response.content


def test_injected_fields_do_not_resurrect_an_out_of_scope_row_as_police(
    deployment: Deployment,
) -> None:
    foreigner = _one_living_in(deployment, TEBET)
    injected = _ref(foreigner["id"], fullName="INJECTED", nationality="XXX")
    response = _entities(deployment, "setiabudi_police", injected)
    assert response.json()["data"]["_entities"] == [None]
    assert b"INJECTED" not in response.content


def test_entities_full_name_as_immigration_officer(deployment: Deployment) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    body = _entities(deployment, "immigration_officer", _ref(foreigner["id"])).json()
    assert "errors" not in body
    assert body["data"]["_entities"] == [
        {"id": str(foreigner["id"]), "fullName": foreigner["full_name"],
         "nationality": foreigner["nationality"]}
    ]


def test_entities_foreigner_is_null_as_public(deployment: Deployment) -> None:
    setiabudi = _one_living_in(deployment, SETIABUDI)
    tebet = _one_living_in(deployment, TEBET)
    response = _entities(deployment, "public", _ref(setiabudi["id"]), _ref(tebet["id"]))
    body = response.json()
    assert "errors" not in body
    assert body["data"]["_entities"] == [None, None]
    for foreigner in (setiabudi, tebet):
        assert foreigner["full_name"].encode() not in response.content


def test_entities_foreigner_is_null_as_rt_head(deployment: Deployment) -> None:
    foreigner = _one_living_in(deployment, deployment.facts.busiest_setiabudi_rt)
    body = _entities(deployment, "rt_head", _ref(foreigner["id"])).json()
    assert body["data"]["_entities"] == [None]


def test_entities_kecamatan_but_not_rt_as_public(deployment: Deployment) -> None:
    rt = deployment.facts.busiest_setiabudi_rt
    body = deployment.gql(AREA_ENTITIES, "public", reps=[
        {"__typename": "Area", "code": SETIABUDI},
        {"__typename": "Area", "code": rt},
    ])
    assert "errors" not in body
    kecamatan, rt_entity = body["data"]["_entities"]
    assert kecamatan["code"] == SETIABUDI
    assert kecamatan["level"] == "KECAMATAN"
    assert kecamatan["name"]
    assert rt_entity is None


def test_entities_area_outside_jurisdiction_is_null_as_police(deployment: Deployment) -> None:
    body = deployment.gql(AREA_ENTITIES, "setiabudi_police", reps=[
        {"__typename": "Area", "code": SETIABUDI},
        {"__typename": "Area", "code": TEBET},
    ])
    assert "errors" not in body
    assert [a and a["code"] for a in body["data"]["_entities"]] == [SETIABUDI, None]


def test_entities_of_a_non_entity_type_echo_nothing_as_police(deployment: Deployment) -> None:
    forged = {"__typename": "Report", "id": "1", "text": "FORGED-REPORT-TEXT"}
    response = deployment.post(
        "query($reps: [_Any!]!) { _entities(representations: $reps) { __typename } }",
        "setiabudi_police", {"reps": [forged]})
    body = response.json()
    assert body["data"] == {"_entities": [None]}  # the entry fails alone, not the field
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("BAD_USER_INPUT", ["_entities", 0])]
    assert b"FORGED-REPORT-TEXT" not in response.content


def test_entities_without_their_key_are_bad_input_as_police(deployment: Deployment) -> None:
    response = deployment.post(
        "query($reps: [_Any!]!) { _entities(representations: $reps) { __typename } }",
        "setiabudi_police", {"reps": [{"__typename": "Foreigner", "fullName": "x"}]})
    body = response.json()
    assert body["data"] == {"_entities": [None]}
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("BAD_USER_INPUT", ["_entities", 0])]


# -- review F6: a bad representation fails its own entry, never the batch -------------------

MIXED_ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) {
    ... on Foreigner { id nationality }
    ... on Area { code level }
  }
}
"""

# Each is wrong in its shape (not merely a missing or out-of-range record): the marker
# strings prove no message echoes the representation.
BAD_REPRESENTATIONS: list[Any] = [
    {"__typename": "Foreigner", "id": [1]},
    {"__typename": "Foreigner", "id": {"a": "ECHO-OBJECT-ID"}},
    {"__typename": "Foreigner", "id": None},
    {"__typename": "Foreigner", "id": True},
    {"__typename": "Foreigner", "id": 1.5},
    {"__typename": "Foreigner"},
    {"id": "1"},
    {"__typename": "Area", "code": 1.5},
    {"__typename": "Area", "code": 3174},
    {"__typename": "Area", "code": ["31.74"]},
    {"__typename": "Area", "code": "ECHO-NOT-A-CODE"},
    {"__typename": "Area"},
    ["x"],
    "ECHO-A-STRING",
    42,
    True,
    {"__typename": "EchoUnknownType", "id": "1"},
    {"__typename": ["Foreigner"], "id": "1"},
    {"__typename": None, "id": "1"},
    {"__typename": "Report", "id": "1"},
    {},
]


def test_each_bad_representation_fails_its_own_entry_as_police(deployment: Deployment) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    good_foreigner = _ref(foreigner["id"])
    good_area = {"__typename": "Area", "code": SETIABUDI}
    # Good entries first, last and between every bad one.
    reps: list[Any] = [good_foreigner]
    for bad in BAD_REPRESENTATIONS:
        reps += [bad, good_area if len(reps) % 4 == 1 else good_foreigner]
    response = deployment.post(MIXED_ENTITIES, "setiabudi_police", {"reps": reps})
    assert response.status_code == 200, response.text
    body = response.json()
    entities = body["data"]["_entities"]
    assert len(entities) == len(reps)
    bad_indexes = [i for i, rep in enumerate(reps) if rep is not good_foreigner
                   and rep is not good_area]
    assert len(bad_indexes) == len(BAD_REPRESENTATIONS)
    for i, rep in enumerate(reps):
        if rep is good_foreigner:
            assert entities[i] == {"id": str(foreigner["id"]),
                                   "nationality": foreigner["nationality"]}, i
        elif rep is good_area:
            assert entities[i] == {"code": SETIABUDI, "level": "KECAMATAN"}, i
        else:
            assert entities[i] is None, i
    # One BAD_USER_INPUT error per bad entry, at that entry's path, and no other.
    errors = sorted(body["errors"], key=lambda e: e["path"][1])
    assert [e["path"] for e in errors] == [["_entities", i] for i in bad_indexes]
    assert {e["extensions"]["code"] for e in errors} == {"BAD_USER_INPUT"}
    assert b"ECHO" not in response.content.replace(b"EchoUnknownType", b"")
    assert b"EchoUnknownType" not in response.content


def test_a_bad_representation_alone_fails_only_its_entry_as_immigration_officer(
    deployment: Deployment,
) -> None:
    foreigner = _one_living_in(deployment, TEBET)
    for bad in BAD_REPRESENTATIONS:
        body = deployment.gql(MIXED_ENTITIES, "immigration_officer",
                              reps=[bad, _ref(foreigner["id"])])
        assert body["data"]["_entities"] == [
            None, {"id": str(foreigner["id"]), "nationality": foreigner["nationality"]}], bad
        assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
            ("BAD_USER_INPUT", ["_entities", 0])], bad


def test_missing_and_out_of_range_ids_are_null_without_an_error_among_bad_ones_as_police(
    deployment: Deployment,
) -> None:
    # A well-formed id that names no row answers like a missing record: null, no error;
    # only the malformed representation carries one.
    foreigner = _one_living_in(deployment, SETIABUDI)
    reps = [_ref(_missing_id(deployment)), {"__typename": "Foreigner", "id": 2**70},
            {"__typename": "Foreigner", "id": [1]}, _ref(foreigner["id"])]
    body = deployment.gql(MIXED_ENTITIES, "setiabudi_police", reps=reps)
    assert body["data"]["_entities"][:3] == [None, None, None]
    assert body["data"]["_entities"][3]["id"] == str(foreigner["id"])
    assert [e["path"] for e in body["errors"]] == [["_entities", 2]]


def test_bad_representations_in_aliases_sharing_a_variable_as_police(
    deployment: Deployment,
) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    body = deployment.gql(
        "query($reps: [_Any!]!) { a: _entities(representations: $reps) "
        "{ ... on Foreigner { id } } b: _entities(representations: $reps) "
        "{ ... on Foreigner { id } } }",
        "setiabudi_police", reps=[{"id": "1"}, _ref(foreigner["id"])])
    expected = [None, {"id": str(foreigner["id"])}]
    assert body["data"] == {"a": expected, "b": expected}
    assert sorted(tuple(e["path"]) for e in body["errors"]) == [("a", 0), ("b", 0)]


# -- issue 8 section 3: inputs are never mutated; `_service` obeys introspection ---------


def test_two_entities_aliases_sharing_one_variable_both_resolve_as_police(
    deployment: Deployment,
) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    body = deployment.gql(
        "query($reps: [_Any!]!) { a: _entities(representations: $reps) "
        "{ ... on Foreigner { id nationality } ... on Area { code } } "
        "b: _entities(representations: $reps) "
        "{ ... on Foreigner { id nationality } ... on Area { code } } "
        "c: _entities(representations: $reps) { __typename } }",
        "setiabudi_police",
        reps=[_ref(foreigner["id"]), {"__typename": "Area", "code": SETIABUDI}])
    assert "errors" not in body, body
    expected = [{"id": str(foreigner["id"]), "nationality": foreigner["nationality"]},
                {"code": SETIABUDI}]
    assert body["data"]["a"] == body["data"]["b"] == expected
    assert body["data"]["c"] == [{"__typename": "Foreigner"}, {"__typename": "Area"}]


def test_entities_in_a_batch_sharing_variables_both_resolve_as_police(
    deployment: Deployment,
) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    operation = {"query": FOREIGNER_ENTITIES, "variables": {"reps": [_ref(foreigner["id"])]}}
    response = deployment.client.post(
        f"{deployment.base_url}/graphql", json=[operation, operation],
        headers={"authorization": f"Bearer {deployment.token('setiabudi_police')}"})
    first, second = response.json()
    assert "errors" not in first and "errors" not in second
    assert first == second


SERVICE_QUERIES = [
    "{ _service { sdl } }",
    "{ s: _service { sdl } }",
    "query { ...Q } fragment Q on Query { _service { sdl } }",
    "{ ... on Query { _service { __typename } } }",
]


@pytest.fixture(scope="module")
def servers_by_introspection(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                             ) -> Iterator[dict[str, str]]:
    """The same gateway over the same database, with introspection off and authenticated."""
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for mode in ("off", "authenticated"):
            tmp = tmp_path_factory.mktemp(f"introspection-{mode}")
            app = create_app(deployment.settings_with(tmp, introspection=mode))
            urls[mode] = stack.enter_context(ServerThread(app))
        yield urls


def _service(url: str, query: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/graphql", json={"query": query}, headers=headers, timeout=30)


@pytest.mark.parametrize("query", SERVICE_QUERIES)
@pytest.mark.parametrize("persona", ["public", "immigration_officer", "auditor"])
def test_service_sdl_is_refused_with_introspection_off(
    deployment: Deployment, servers_by_introspection: dict[str, str], query: str,
    persona: str,
) -> None:
    response = _service(servers_by_introspection["off"], query, deployment.token(persona))
    body = response.json()
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTROSPECTION_DISABLED"]
    for leak in (b"type Foreigner", b"@key", b"passportNumber"):
        assert leak not in response.content


def test_service_sdl_needs_a_token_with_introspection_authenticated(
    deployment: Deployment, servers_by_introspection: dict[str, str],
) -> None:
    url = servers_by_introspection["authenticated"]
    anonymous = _service(url, "{ _service { sdl } }", None).json()
    assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["INTROSPECTION_DISABLED"]
    router = _service(url, "{ _service { sdl } }", deployment.token("immigration_officer"))
    assert "type Foreigner" in router.json()["data"]["_service"]["sdl"]


def test_entities_still_resolve_with_introspection_off_as_police(
    deployment: Deployment, servers_by_introspection: dict[str, str],
) -> None:
    foreigner = _one_living_in(deployment, SETIABUDI)
    response = httpx.post(
        f"{servers_by_introspection['off']}/graphql", timeout=30,
        json={"query": FOREIGNER_ENTITIES, "variables": {"reps": [_ref(foreigner["id"])]}},
        headers={"authorization": f"Bearer {deployment.token('setiabudi_police')}"})
    assert response.json()["data"]["_entities"][0]["id"] == str(foreigner["id"])


def test_a_null_representation_is_refused_with_the_request_as_police(
    deployment: Deployment,
) -> None:
    # The one exception: Federation fixes the argument as `[_Any!]!`, so a null item fails
    # variable coercion before anything runs (no entry resolves, and nothing is read).
    body = deployment.gql(MIXED_ENTITIES, "setiabudi_police",
                          reps=[None, {"__typename": "Area", "code": SETIABUDI}])
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
