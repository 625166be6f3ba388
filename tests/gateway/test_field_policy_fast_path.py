"""The field policy skips its per-field hook only when it provably has nothing to deny.

Field decisions depend on (role, type, field) only, so before executing, the gateway
lists every (type, field) the document can execute (`schema.privacy.selected_fields`);
when the caller may read all of them, resolvers run without the hook. These tests run a
gateway whose hook records every field it sees, over real HTTP:

- whatever a document does (fragments, inline fragments, unions, aliases, directives,
  federation entities, mutations), every field that executes is in that list — so the
  skip can never let a denied field through;
- the hook is skipped exactly when every selected field is readable, and a denied field
  is still null in the raw response when it is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import pytest
from conftest import Deployment, ServerThread, purpose_headers, run_async
from graphql import GraphQLResolveInfo, parse
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from resolvers.models import Report
from schema.privacy import FieldPolicy, selected_fields


class RecordingPolicy(FieldPolicy):
    """The real field policy, recording every (type, field) its hook is asked about."""

    seen: ClassVar[list[tuple[str, str]]] = []
    always_check = False

    def needs_checks(self) -> bool:
        return True if self.always_check else super().needs_checks()

    def hooks(self, fields: tuple[tuple[str, str], ...] | None) -> bool:
        # Every field through the hook, so every executed field is seen.
        return True if self.always_check else super().hooks(fields)

    def resolve(self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo,
                *args: Any, **kwargs: Any) -> Any:
        RecordingPolicy.seen.append((info.parent_type.name, info.field_name))
        return super().resolve(_next, root, info, *args, **kwargs)


@pytest.fixture(scope="module")
def recording(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Deployment, str, Any]]:
    settings = deployment.settings_with(tmp_path_factory.mktemp("recording"))
    app = create_app(settings, field_policy=RecordingPolicy)
    with ServerThread(app) as base_url:
        yield deployment, base_url, app

    async def delete_probe_reports() -> None:
        engine = create_async_engine(deployment.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(delete(Report).where(Report.text == PROBE))
        finally:
            await engine.dispose()

    run_async(delete_probe_reports())


def _post(recording: tuple[Deployment, str, Any], query: str, persona: str,
          variables: dict[str, Any] | None = None) -> httpx.Response:
    deployment, base_url, _app = recording
    token = deployment.token(persona)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    headers.update(purpose_headers())
    RecordingPolicy.seen.clear()
    response = deployment.client.post(f"{base_url}/graphql", headers=headers,
                                      json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response


PROBE = "sisada-fast-path-probe"

DOCUMENTS = {
    "fragments and aliases": """
        query { list: foreigners(first: 5) { nodes { ...F } pageInfo { endCursor } } }
        fragment F on Foreigner { id who: fullName ...G residence { ... on Residence {
          area { code parent { name } } } } }
        fragment G on Foreigner { permits { number } nationality }""",
    "directives": """
        query ($no: Boolean = false) { foreigners(first: 3) { nodes {
          id fullName @include(if: $no) sex @skip(if: $no) } } }""",
    "entities through a union": """
        query ($r: [_Any!]!) { _entities(representations: $r) {
          __typename ... on Foreigner { id fullName residence { streetAddress } }
          ... on Area { code name foreignerCount } } }""",
    "unused operation and fragment": """
        query A { sisadaMe { role area } }
        query B { areas(level: KECAMATAN) { code children { name } } }""",
    "reports and activities": """
        query { reports(first: 3) { nodes { id area { name } foreigner { nationality } } }
                activities(first: 3) { nodes { id officer { name } subject { id } } } }""",
    "a mutation result": """
        mutation { submitReport(input: {category: SUSPICIOUS_ACTIVITY,
                   text: "PROBE", areaCode: "{rt}"}) { receiptCode status } }""",
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_executed_field_is_among_the_documents_selected_fields_as_supervisor(
    recording: tuple[Deployment, str, Any], name: str
) -> None:
    deployment, _base_url, app = recording
    query = DOCUMENTS[name].replace("{rt}", deployment.facts.busiest_setiabudi_rt)
    query = query.replace('"PROBE"', f'"{PROBE}"')
    variables: dict[str, Any] = {}
    if "_entities" in query:
        variables = {"r": [{"__typename": "Foreigner", "id": "1"},
                           {"__typename": "Area", "code": "31.74.02"}]}
    operation = {"unused operation and fragment": "B"}.get(name)
    RecordingPolicy.always_check = True
    try:
        response = _post_operation(recording, query, variables, operation)
    finally:
        RecordingPolicy.always_check = False
    assert "errors" not in response.json(), response.text
    executed = {(t, f) for t, f in RecordingPolicy.seen if not f.startswith("__")}
    assert executed, "nothing executed: the comparison proves nothing"
    listed = selected_fields(app.state.sisada.schema._schema, query, parse(query))
    assert executed <= listed


def _post_operation(recording: tuple[Deployment, str, Any], query: str,
                    variables: dict[str, Any], operation: str | None) -> httpx.Response:
    deployment, base_url, _app = recording
    token = deployment.token("immigration_supervisor")
    RecordingPolicy.seen.clear()
    body: dict[str, Any] = {"query": query, "variables": variables}
    if operation:
        body["operationName"] = operation
    response = deployment.client.post(f"{base_url}/graphql", json=body,
                                      headers={"authorization": f"Bearer {token}",
                                               **purpose_headers()})
    assert response.status_code == 200, response.text
    return response


READABLE_ONLY = "{ foreigners(first: 5) { nodes { id nationality residence { areaCode } } } }"
WITH_NAME = "{ foreigners(first: 5) { nodes { id nationality fullName } } }"


def test_hook_is_skipped_when_every_selected_field_is_readable_as_police(
    recording: tuple[Deployment, str, Any],
) -> None:
    body = _post(recording, READABLE_ONLY, "setiabudi_police").json()
    assert len(body["data"]["foreigners"]["nodes"]) == 5
    assert RecordingPolicy.seen == []


def test_name_is_null_in_the_raw_bytes_when_selected_as_police(
    recording: tuple[Deployment, str, Any],
) -> None:
    deployment = recording[0]
    response = _post(recording, WITH_NAME, "setiabudi_police")
    assert ("Foreigner", "fullName") in RecordingPolicy.seen
    assert response.content.count(b'"fullName":null') == 5
    for foreigner in deployment.facts.foreigners:
        assert foreigner["full_name"].encode() not in response.content
    assert response.json()["extensions"]["redacted"]["Foreigner"] == ["fullName"]
