"""Changing who sees what means editing a .polar file: the running gateway reloads it
(SIGHUP → AppState.reload_policy) without a restart; a broken file changes nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deployment

from policies.loader import POLICY_DIR

QUERY = "{ foreigners(first: 3) { nodes { id sex nationality } } }"




def _nodes(base_url: str, token: str) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/graphql", json={"query": QUERY},
                          headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.json()


def test_editing_a_polar_file_changes_what_police_see(
    deployment: Deployment, editable_gateway: tuple[str, Any, Path]
) -> None:
    base_url, app, policy_dir = editable_gateway
    token = deployment.token("setiabudi_police")
    assert all(n["sex"] for n in _nodes(base_url, token)["data"]["foreigners"]["nodes"])

    foreigners = policy_dir / "foreigners.polar"
    text = foreigners.read_text()
    assert '"sex", ' in text
    foreigners.write_text(text.replace('"sex", ', "", 1))
    assert app.state.sisada.reload_policy() is True

    body = _nodes(base_url, token)
    assert all(n["sex"] is None and n["nationality"] for n in body["data"]["foreigners"]["nodes"])
    assert "sex" in body["extensions"]["redacted"]["Foreigner"]


def test_a_broken_policy_keeps_the_one_in_force(
    deployment: Deployment, editable_gateway: tuple[str, Any, Path]
) -> None:
    base_url, app, policy_dir = editable_gateway
    (policy_dir / "broken.polar").write_text("readable(role, \"Foreigner\" if and;")
    assert app.state.sisada.reload_policy() is False
    body = _nodes(base_url, deployment.token("setiabudi_police"))
    assert all(n["sex"] for n in body["data"]["foreigners"]["nodes"])


def test_unknown_paths_answer_json(deployment: Deployment) -> None:
    response = deployment.client.get(f"{deployment.base_url}/no/such/path")
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def _policy_check(*args: str) -> subprocess.CompletedProcess[str]:
    sisada = Path(sys.executable).with_name("sisada")
    return subprocess.run([str(sisada), "policy-check", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_policy_check_cli_passes_on_the_shipped_policy() -> None:
    result = _policy_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "police:" in result.stdout and "error:" not in result.stdout


def test_policy_check_cli_reports_a_misspelt_field(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (policy_dir / "typo.polar").write_text(
        'readable(_role, "Foreigner", field) if field in ["fulName"];\n')
    result = _policy_check("--dir", str(policy_dir))
    assert result.returncode == 1
    assert "error: the policy names Foreigner.fulName" in result.stdout


TWO_FIELDS = ('allow(actor: Principal, "read", f: Foreigner) if actor.role = "public" and '
              "f.city_code = f.kecamatan_code;")
# An exclusion decided on the claim alone: on the template actor it would be decided for the
# placeholder and vanish from the SQL (fail open), so it must refuse to load.
CLAIM_ALONE = ('allow(actor: Principal, "read", r: Report) if actor.role = "police" and '
               'actor.area != "31.74.01" and located_in(r, actor);')
NO_SUCH_FIELD = ('allow(actor: Principal, "read", f: Foreigner) if actor.role = "public" and '
                 'f.passport_colour = "red";')


@pytest.mark.parametrize(("rule", "message"), [
    # Two fields of one record: the row-filter vocabulary has no exact SQL for it.
    (TWO_FIELDS, "cannot turn the row rules of Foreigner for public into a filter: "
                 "row rules may not compare two fields"),
    (CLAIM_ALONE, "cannot turn the row rules of Report for police into a filter: "
                  "a row rule tests actor.area without a record field"),
    # A field the data layer has no column for.
    (NO_SUCH_FIELD, "error: public's row rules compare Foreigner.passport_colour, "
                    "which no column answers"),
])
def test_policy_check_cli_refuses_a_row_rule_sql_cannot_express(
    tmp_path: Path, rule: str, message: str
) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (policy_dir / "odd_rows.polar").write_text(rule + "\n")
    result = _policy_check("--dir", str(policy_dir))
    assert result.returncode == 1
    assert message in result.stdout + result.stderr
