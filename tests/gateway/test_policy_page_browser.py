"""/policy in a real headless browser (Debian's chromium, driven by Playwright), and over
real HTTP: who may open it is policy, it shows the policy in force, it serves only the
files the policy loaded.

The browser sends the bearer token as an extra HTTP header, as a client would; tokens
never go in URLs. Under CI a missing chromium fails the suite, it is never skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deployment, ServerThread

from gateway.app import create_app
from policies.loader import POLICY_DIR

# The page needs no database of its own: one backend is enough.
pytestmark = pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)


def _headers(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _get(base_url: str, path: str, token: str | None = None) -> httpx.Response:
    return httpx.get(f"{base_url}{path}", headers=_headers(token), timeout=30)


def _open(browser: Any, url: str, token: str | None) -> tuple[Any, Any, list[str]]:
    """A fresh page that sends the token with every request; also the URLs it asked for."""
    context = browser.new_context(extra_http_headers=_headers(token))
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(url)
    return page, response, requested


# -- in the browser -----------------------------------------------------------------------


def test_policy_page_renders_one_column_per_role_as_supervisor(
    deployment: Deployment, browser: Any
) -> None:
    token = deployment.token("immigration_supervisor")
    matrix = _get(deployment.base_url, "/policy/matrix.json", token).json()
    page, response, requested = _open(browser, f"{deployment.base_url}/policy", token)
    try:
        assert response.status == 200
        assert page.title() == "Sisada access matrix"
        table = page.locator("table.fields[data-caption='Foreigner']")
        assert table.is_visible()
        box = table.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        headers = table.locator("thead th[data-role]").all_inner_texts()
        assert headers == matrix["roles"]
        # Self-contained: the page asked for nothing but itself.
        assert requested == [f"{deployment.base_url}/policy"]
    finally:
        page.context.close()


@pytest.mark.parametrize("role", ["police", "immigration_officer", "public"])
def test_a_roles_column_on_the_page_is_its_json(
    deployment: Deployment, browser: Any, role: str
) -> None:
    token = deployment.token("auditor")
    matrix = _get(deployment.base_url, "/policy/matrix.json", token).json()
    page, response, _ = _open(browser, f"{deployment.base_url}/policy", token)
    try:
        assert response.status == 200
        # What the browser rendered, read back from the DOM: every field cell of the role.
        shown = page.eval_on_selector_all(
            f"table.fields td[data-role='{role}']",
            "cells => cells.map(c => [c.dataset.type, c.dataset.field, c.innerText.trim()])")
        scope = page.eval_on_selector_all(
            f"table.scope td[data-role='{role}']",
            "cells => cells.map(c => [c.dataset.level, c.dataset.type, c.innerText.trim()])")
    finally:
        page.context.close()
    expected = {(entry["type"], row["field"]): role in row["readers"]
                for entry in matrix["root_fields"] + matrix["types"] for row in entry["fields"]}
    assert {(t, f): text == "yes" for t, f, text in shown} == expected
    assert len(shown) == len(expected)
    rows = {(s["level"] or "", t): words for s in matrix["by_role"][role]["row_scope"]
            for t, words in s["rows"].items()}
    assert {(level, t): words for level, t, words in scope} == rows


def test_police_get_403_and_nothing_of_the_matrix_in_the_browser(
    deployment: Deployment, browser: Any
) -> None:
    page, response, _ = _open(browser, f"{deployment.base_url}/policy",
                              deployment.token("setiabudi_police"))
    try:
        assert response.status == 403
        body = page.content()
        assert "<table" not in body and "fullName" not in body and ".polar" not in body
    finally:
        page.context.close()


# -- over HTTP ----------------------------------------------------------------------------


def test_auditor_reads_the_sources_the_policy_loaded(deployment: Deployment) -> None:
    token = deployment.token("auditor")
    matrix = _get(deployment.base_url, "/policy/matrix.json", token).json()
    assert matrix["files"] == sorted(p.name for p in POLICY_DIR.glob("*.polar"))
    for name in matrix["files"]:
        response = _get(deployment.base_url, f"/policy/sources/{name}", token)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.content == (POLICY_DIR / name).read_bytes()


@pytest.mark.parametrize("path", ["loader.py", "..%2Fgateway%2Fsettings.py",
                                  "..%2F..%2Fpyproject.toml", "%2Fetc%2Fpasswd",
                                  "roles.polar%00", "ROLES.polar", "matrix.json"])
def test_only_loaded_files_are_served(deployment: Deployment, path: str) -> None:
    response = _get(deployment.base_url, f"/policy/sources/{path}", deployment.token("auditor"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("persona", ["setiabudi_police", "immigration_officer",
                                     "tebet_district", "rt_head"])
def test_roles_the_policy_does_not_name_get_403(deployment: Deployment, persona: str) -> None:
    for path in ("/policy", "/policy/matrix.json", "/policy/sources/roles.polar"):
        response = _get(deployment.base_url, path, deployment.token(persona))
        assert response.status_code == 403, path
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "polar" not in response.text and "readable" not in response.text


def test_anonymous_callers_are_asked_for_a_token(deployment: Deployment) -> None:
    response = _get(deployment.base_url, "/policy")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_bad_token_is_401(deployment: Deployment) -> None:
    assert _get(deployment.base_url, "/policy", "not-a-token").status_code == 401


def test_the_page_is_read_only(deployment: Deployment) -> None:
    response = httpx.post(f"{deployment.base_url}/policy/matrix.json",
                          headers=_headers(deployment.token("auditor")), timeout=30)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_the_page_allows_nothing_external(deployment: Deployment) -> None:
    response = _get(deployment.base_url, "/policy", deployment.token("auditor"))
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "private" in response.headers["cache-control"]
    assert "http://" not in response.text and "https://" not in response.text


# -- settings and reloads -----------------------------------------------------------------




def test_public_setting_opens_the_page_to_everyone(deployment: Deployment,
                                                   tmp_path: Path) -> None:
    app = create_app(deployment.settings_with(tmp_path, policy_page_public=True))
    with ServerThread(app) as base_url:
        assert _get(base_url, "/policy").status_code == 200
        assert _get(base_url, "/policy/matrix.json",
                    deployment.token("setiabudi_police")).status_code == 200


def test_a_reloaded_policy_shows_on_the_page(
    deployment: Deployment, editable_gateway: tuple[str, Any, Path]
) -> None:
    base_url, app, policy_dir = editable_gateway
    auditor, police = deployment.token("auditor"), deployment.token("setiabudi_police")

    def sex_readers() -> list[str]:
        matrix = _get(base_url, "/policy/matrix.json", auditor).json()
        entry = next(e for e in matrix["types"] if e["type"] == "Foreigner")
        return next(r["readers"] for r in entry["fields"] if r["field"] == "sex")

    assert "police" in sex_readers()
    assert _get(base_url, "/policy", police).status_code == 403

    foreigners = policy_dir / "foreigners.polar"
    foreigners.write_text(foreigners.read_text().replace('"sex", ', "", 1))
    page = policy_dir / "policy_page.polar"
    page.write_text(page.read_text().replace('"auditor"]', '"auditor", "police"]', 1))
    assert app.state.sisada.reload_policy() is True

    assert "police" not in sex_readers()
    assert _get(base_url, "/policy", police).status_code == 200
    source = _get(base_url, "/policy/sources/foreigners.polar", auditor).text
    assert source == foreigners.read_text()
