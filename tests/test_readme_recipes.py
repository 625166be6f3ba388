"""README.md's Recipes, run as written: every recipe block is read out of the README and
sent as its role (with its purpose) to a seeded gateway over HTTP, or over WebSocket for
a subscription, and must answer without errors. A README that drifts from the schema or
the policy fails here.

A recipe is a ```graphql block right after `<!-- recipe: ROLE [purpose=P] [websocket] -->`,
optionally followed by a ```json block of variables. Variables that name the demo data
(a passport number, a report id, a receipt code) are replaced by ones of the test data.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SETIABUDI, Deployment, delete_marked_rows
from websockets.asyncio.client import connect

from policies import Policy

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "sisada-readme-recipe-"
RECIPE = re.compile(
    r"<!-- recipe: (?P<role>\w+)(?P<options>[^>]*?) -->\n"
    r"```graphql\n(?P<query>.*?)```\n"
    r"(?:\n```json\n(?P<variables>.*?)```\n)?", re.S)
# The persona (tests/conftest.py) that plays each role: the demo's jurisdictions.
PERSONAS = {"immigration_officer": "immigration_officer",
            "immigration_supervisor": "immigration_supervisor",
            "police": "setiabudi_police", "military": "setiabudi_military",
            "district": "setiabudi_district", "neighbourhood": "rt_head",
            "public": "public", "auditor": "auditor"}
OWN_REPORTS = "{ reports(first: 100) { nodes { id receiptCode text } } }"
SUBMIT = """mutation ($input: SubmitReportInput!) { submitReport(input: $input) {
  receiptCode } }"""
RECORD = "mutation ($input: RecordActivityInput!) { recordActivity(input: $input) { id } }"


@dataclass(frozen=True)
class Recipe:
    role: str
    purpose: str | None
    websocket: bool
    query: str
    variables: dict[str, Any]

    @property
    def name(self) -> str:
        found = re.search(r"(?:query|mutation|subscription)\s+(\w+)", self.query)
        return f"{self.role}-{found.group(1) if found else 'anonymous'}"


def recipes() -> list[Recipe]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in RECIPE.finditer(text):
        options = match["options"].split()
        purpose = next((o.split("=", 1)[1] for o in options if o.startswith("purpose=")),
                       None)
        found.append(Recipe(role=match["role"], purpose=purpose,
                            websocket="websocket" in options, query=match["query"],
                            variables=orjson.loads(match["variables"] or "{}")))
    return found


RECIPES = recipes()


def test_every_role_of_the_policy_has_a_recipe() -> None:
    # Every recipe marker is parsed (none is silently skipped by a typo in its block).
    assert len(RECIPES) == README.read_text(encoding="utf-8").count("<!-- recipe: ")
    policy = Policy()
    assert {r.role for r in RECIPES} == set(policy.roles)
    for recipe in RECIPES:
        if recipe.purpose is not None:
            assert recipe.purpose in policy.purposes_of(recipe.role), recipe.name


@pytest.fixture(scope="module")
def demo_values(deployment: Deployment) -> Iterator[dict[str, Any]]:
    """What the README's variables name in the demo data, found in the test data: a
    passport number, a freshly submitted report (its id and the public's receipt code)."""
    in_setiabudi = sorted(deployment.facts.in_area(SETIABUDI))
    passport = next(f["passport_number"] for f in deployment.facts.foreigners
                    if f["id"] == in_setiabudi[0])
    text = f"{MARKER}{uuid.uuid4().hex}"
    area = deployment.facts.busiest_setiabudi_rt
    for persona in ("rt_head", "public"):
        body = deployment.gql(SUBMIT, persona, input={"category": "OVERSTAY", "text": text,
                                                       "areaCode": area})
        assert "errors" not in body, body
    receipt = body["data"]["submitReport"]["receiptCode"]
    own = deployment.gql(OWN_REPORTS, "rt_head")["data"]["reports"]["nodes"]
    report_id = next(n["id"] for n in own if n["text"] == text)
    yield {"documentNumber": passport, "id": report_id, "receiptCode": receipt,
           "text": f"{MARKER}{uuid.uuid4().hex}"}
    delete_marked_rows(deployment.database_url, MARKER)


def _variables(recipe: Recipe, demo_values: dict[str, Any]) -> dict[str, Any]:
    return {name: demo_values.get(name, value) for name, value in recipe.variables.items()}


def _check(recipe: Recipe, payload: dict[str, Any]) -> None:
    assert "errors" not in payload, (recipe.name, payload["errors"])
    data = payload["data"]
    assert data, recipe.name
    # Not a vacuous answer: every root field of the recipe resolved to something.
    assert all(value is not None for value in data.values()), (recipe.name, data)


@pytest.mark.parametrize("recipe", [r for r in RECIPES if not r.websocket],
                         ids=lambda r: r.name)
def test_recipe_runs_over_http_as_its_role(deployment: Deployment, demo_values: dict[str, Any],
                                           recipe: Recipe) -> None:
    response = deployment.post(recipe.query, PERSONAS[recipe.role],
                               _variables(recipe, demo_values), purpose=recipe.purpose)
    assert response.status_code == 200, response.text
    _check(recipe, response.json())


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.websocket], ids=lambda r: r.name)
def test_recipe_runs_over_websocket_as_its_role(deployment: Deployment,
                                                demo_values: dict[str, Any],
                                                recipe: Recipe) -> None:
    """The subscription as its role; then an officer records an activity, which arrives."""
    url = deployment.base_url.replace("http://", "ws://") + "/graphql"
    token = deployment.token(PERSONAS[recipe.role])

    async def run() -> dict[str, Any]:
        async with connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                           open_timeout=10) as ws:
            init: dict[str, Any] = {"authorization": f"Bearer {token}"}
            if recipe.purpose:
                init["purpose"] = recipe.purpose
            await ws.send(orjson.dumps({"type": "connection_init", "payload": init}).decode())
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == (
                "connection_ack")
            await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": recipe.query, "variables": _variables(recipe, demo_values)}}).decode())
            await asyncio.sleep(0.5)  # the subscription in place before the event
            body = await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer",
                                           input={"kind": "HOME_VISIT",
                                                  "areaCode": deployment.facts
                                                  .busiest_setiabudi_rt,
                                                  "notes": demo_values["text"]})
            assert "errors" not in body, body
            while True:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] == "ping":
                    await ws.send('{"type":"pong"}')
                    continue
                assert message["type"] == "next", message
                return message["payload"]

    _check(recipe, asyncio.run(run()))
