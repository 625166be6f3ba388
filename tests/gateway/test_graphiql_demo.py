"""GraphiQL (issue 12 §4): it opens with an example query; in demo mode only, a picker
fills a token per role of the policy and the role's purpose, from /graphiql/demo-tokens.

Over real HTTP: the endpoint exists in demo mode only (SISADA_DEMO_TOKENS, GraphiQL on, the
development environment, the development key) and every token it lists works as its
role. In Debian's chromium through Playwright: the page, the picker and a query run with
the headers it filled. Under CI a missing chromium fails the suite, it is never skipped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deployment, ServerThread

from gateway.app import create_app
from policies import Policy

DEMO_TOKENS = "/graphiql/demo-tokens"
ME = "{ sisadaMe { role area officerId } }"

# GraphiQL needs no database of its own: one backend is enough.
pytestmark = pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)


def _demo_settings(deployment: Deployment, tmp: Path, **overrides: Any) -> Any:
    """`sisada demo`'s settings: demo tokens on, tokens verified with the development key."""
    values: dict[str, Any] = {"jwt_secret": None, "dev_key_file": tmp / "dev-key",
                              "demo_tokens": True}
    return deployment.settings_with(tmp, **{**values, **overrides})


@pytest.fixture
def demo_gateway(deployment: Deployment, tmp_path: Path) -> Iterator[str]:
    with ServerThread(create_app(_demo_settings(deployment, tmp_path))) as base_url:
        yield base_url


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _me(base_url: str, token: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{base_url}/graphql", json={"query": ME}, headers=headers,
                          timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]["sisadaMe"]


# -- the endpoint, over HTTP ---------------------------------------------------------------


def test_demo_tokens_work_as_each_role_of_the_policy(demo_gateway: str) -> None:
    policy = Policy()
    response = httpx.get(f"{demo_gateway}{DEMO_TOKENS}", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    listing = response.json()
    assert listing["anonymousRole"] == policy.anonymous_role
    roles = {entry["role"]: entry for entry in listing["roles"]}
    assert sorted(roles) == sorted(policy.roles - {policy.anonymous_role})
    for role, entry in roles.items():
        assert entry["purposes"] == policy.purposes_of(role), role
        # The gateway that listed it accepts it, as that role and jurisdiction.
        assert _me(demo_gateway, entry["token"]) == {
            "role": role, "area": entry["area"], "officerId": entry["officerId"]}
        if role in policy.jurisdiction_levels:
            assert entry["area"], role
        if role in policy.officer_kinds:
            assert entry["officerId"] is not None, role


def test_demo_tokens_are_read_with_get_only(demo_gateway: str) -> None:
    response = httpx.post(f"{demo_gateway}{DEMO_TOKENS}", timeout=30)
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def _not_found(base_url: str) -> None:
    response = httpx.get(f"{base_url}{DEMO_TOKENS}", timeout=30)
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert b"eyJ" not in response.content


def test_no_demo_tokens_unless_asked_for(deployment: Deployment, tmp_path: Path) -> None:
    settings = _demo_settings(deployment, tmp_path, demo_tokens=False)
    with ServerThread(create_app(settings)) as base_url:
        _not_found(base_url)


def test_no_demo_tokens_on_a_real_signing_key(deployment: Deployment,
                                             tmp_path: Path) -> None:
    # The shared deployment verifies with a configured secret: no development key, no demo.
    _not_found(deployment.base_url)
    settings = deployment.settings_with(tmp_path, demo_tokens=True)
    with ServerThread(create_app(settings)) as base_url:
        _not_found(base_url)


def test_no_demo_tokens_without_graphiql(deployment: Deployment, tmp_path: Path) -> None:
    settings = _demo_settings(deployment, tmp_path, graphiql=False)
    with ServerThread(create_app(settings)) as base_url:
        _not_found(base_url)


def test_never_demo_tokens_in_production(deployment: Deployment, tmp_path: Path) -> None:
    # Even with every development default explicitly allowed there.
    settings = _demo_settings(deployment, tmp_path, environment="production",
                              allow_dev_key_in_production=True,
                              allow_graphiql_in_production=True,
                              allow_introspection_in_production=True)
    with ServerThread(create_app(settings)) as base_url:
        _not_found(base_url)
        assert httpx.get(f"{base_url}/graphiql", timeout=30).status_code == 200


# -- in the browser -----------------------------------------------------------------------


def _editor_text(page: Any, selector: str) -> str:
    return page.eval_on_selector(f"{selector} .CodeMirror", "e => e.CodeMirror.getValue()")


def _open_graphiql(browser: Any, base_url: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(f"{base_url}/graphiql")
    page.wait_for_selector(".graphiql-query-editor .CodeMirror")
    page.wait_for_function(
        "() => document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror.getValue().includes('query ')")
    return page


def test_graphiql_opens_with_the_example_query_and_no_picker(
    deployment: Deployment, browser: Any
) -> None:
    page = _open_graphiql(browser, deployment.base_url)
    try:
        query = _editor_text(page, ".graphiql-query-editor")
        assert "query ActivePermitsExpiringFirst" in query
        # The example is a valid query of this schema, as the police send it.
        body = deployment.gql(query, "setiabudi_police")
        assert "errors" not in body, body
        assert body["data"]["foreigners"]["nodes"]
        page.wait_for_load_state("networkidle")
        assert page.locator("#sisada-role").is_hidden()
    finally:
        page.context.close()


def test_picking_a_role_sets_its_headers_and_runs_as_it(
    demo_gateway: str, browser: Any
) -> None:
    page = _open_graphiql(browser, demo_gateway)
    sent: list[dict[str, str]] = []
    page.on("request", lambda request: sent.append(request.headers)
            if request.url.endswith("/graphql") and request.method == "POST" else None)
    try:
        picker = page.locator("#sisada-role")
        picker.wait_for(state="visible")
        labels = picker.locator("option").all_inner_texts()
        assert any(label.startswith("police (") for label in labels)
        assert "public (no token)" in labels

        picker.select_option("police")
        police_token = page.input_value("#sisada-token")
        assert _claims(police_token)["role"] == "police"
        assert page.input_value("#sisada-purpose") == ""

        picker.select_option("immigration_officer")
        token = page.input_value("#sisada-token")
        assert _claims(token)["role"] == "immigration_officer"
        assert page.input_value("#sisada-purpose") == "field_check"

        sent.clear()
        with page.expect_response(lambda r: r.url.endswith("/graphql")
                                  and r.request.method == "POST"
                                  and "ActivePermitsExpiringFirst" in (r.request.post_data
                                                                       or "")):
            page.click(".graphiql-execute-button")
        page.wait_for_function(
            "() => document.querySelector('.graphiql-response .CodeMirror')"
            ".CodeMirror.getValue().includes('sisadaMe')")
        result = json.loads(_editor_text(page, ".graphiql-response"))
    finally:
        page.context.close()
    assert any(h.get("authorization") == f"Bearer {token}"
               and h.get("sisada-purpose") == "field_check" for h in sent), sent
    assert "errors" not in result, result
    assert result["data"]["sisadaMe"]["role"] == "immigration_officer"
    nodes = result["data"]["foreigners"]["nodes"]
    # Immigration with a purpose: names come back, from the registry.
    assert nodes and all(node["fullName"] for node in nodes)
