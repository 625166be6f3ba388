"""The access matrix is generated from the policy, and the committed copy is current.

`docs/access-matrix.md` is what auditors read and what review diffs: it must be exactly
what the shipped policy generates. The JSON form is checked against the compiled policy
cell by cell (both derived, nothing written by hand), and a few cells against the SPEC's
"Default visibility" table. No database, no server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROLES

from policies import CompiledPolicy, Policy
from policies.loader import POLICY_DIR
from policies.matrix import access_matrix, scope_in_words, to_html, to_markdown
from policies.resources import RESOURCES

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "access-matrix.md"
REGENERATE = "sisada policy matrix --format md > docs/access-matrix.md"


@pytest.fixture(scope="module")
def matrix(policy: Policy, compiled: CompiledPolicy) -> dict[str, Any]:
    return access_matrix(policy, compiled)


def _readers(matrix: dict[str, Any], type_name: str, field_name: str) -> list[str]:
    for entry in matrix["types"] + matrix["root_fields"]:
        if entry["type"] == type_name:
            for row in entry["fields"]:
                if row["field"] == field_name:
                    return row["readers"]
    raise AssertionError(f"{type_name}.{field_name} is not in the matrix")


def _scope(matrix: dict[str, Any], role: str, level: str | None, type_name: str) -> str:
    for scope in matrix["by_role"][role]["row_scope"]:
        if scope["level"] == level:
            return scope["rows"][type_name]
    raise AssertionError(f"no row scope of {role} at level {level}")


# -- the committed file -------------------------------------------------------------------


def test_committed_matrix_is_what_the_policy_generates(matrix: dict[str, Any]) -> None:
    generated = to_markdown(matrix)
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == generated, (
        f"docs/access-matrix.md is out of date with the policy; regenerate it with "
        f"`{REGENERATE}` and commit the diff (it is the review's view of the change)")


def test_cli_prints_the_committed_markdown() -> None:
    sisada = Path(sys.executable).with_name("sisada")
    result = subprocess.run([str(sisada), "policy", "matrix"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == COMMITTED.read_text(encoding="utf-8")


def test_cli_says_one_line_and_exits_1_when_the_policy_does_not_load(tmp_path: Path) -> None:
    (tmp_path / "broken.polar").write_text('readable(role, "Foreigner" if and;')
    sisada = Path(sys.executable).with_name("sisada")
    result = subprocess.run([str(sisada), "policy", "matrix", "--format", "json", "--dir",
                             str(tmp_path)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("policy: cannot load policy")


# -- the JSON form, cell by cell against the compiled policy ------------------------------


def test_every_schema_field_is_a_row_and_every_cell_is_the_compiled_decision(
    matrix: dict[str, Any], compiled: CompiledPolicy, fields: dict[str, list[str]]
) -> None:
    rows = {(entry["type"], row["field"]): row["readers"]
            for entry in matrix["types"] + matrix["root_fields"] for row in entry["fields"]}
    assert set(rows) == {(t, f) for t, names in fields.items() for f in names}
    for (type_name, field_name), readers in rows.items():
        expected = [r for r in matrix["roles"]
                    if compiled.for_role(r).may_read(type_name, field_name)]
        assert readers == expected, f"{type_name}.{field_name}"


def test_root_fields_are_listed_apart_from_object_types(matrix: dict[str, Any]) -> None:
    assert [entry["type"] for entry in matrix["root_fields"]] == ["Query", "Mutation",
                                                                  "Subscription"]
    assert "Query" not in [entry["type"] for entry in matrix["types"]]


def test_roles_are_the_policys_in_declaration_order(matrix: dict[str, Any]) -> None:
    assert matrix["roles"] == list(ROLES)


def test_row_scope_is_the_compiled_row_filter_of_each_level_a_token_may_carry(
    matrix: dict[str, Any], policy: Policy, compiled: CompiledPolicy
) -> None:
    for role in matrix["roles"]:
        access = compiled.for_role(role)
        levels = [s["level"] for s in matrix["by_role"][role]["row_scope"]]
        assert set(levels) == (set(policy.jurisdiction_levels.get(role, ())) or {None})
        for level in levels:
            for type_name in RESOURCES:
                words = scope_in_words(access.row_filter(type_name, level), type_name, role,
                                       level)
                assert _scope(matrix, role, level, type_name) == words


def test_counts_and_location_precision_are_the_compiled_ones(
    matrix: dict[str, Any], compiled: CompiledPolicy
) -> None:
    for role in matrix["roles"]:
        access, summary = compiled.for_role(role), matrix["by_role"][role]
        assert summary["count_cell_minimum"] == access.count_cell_minimum
        precision = summary["location_precision"]
        assert set(precision) == set(access.location_precision)
        for type_name, rule in precision.items():
            assert rule["k"] == access.location_precision[type_name].k
            assert set(rule["place_texts"]) == access.location_precision[type_name].texts
            assert all(not access.may_read(type_name, f) for f in rule["hidden_links"])


def test_matrix_is_deterministic(policy: Policy, compiled: CompiledPolicy,
                                 matrix: dict[str, Any]) -> None:
    assert access_matrix(policy, compiled) == matrix
    assert to_html(matrix) == to_html(access_matrix(policy, compiled))


# -- a few cells against the SPEC table ---------------------------------------------------


def test_foreigner_full_name_is_readable_by_immigration_only(matrix: dict[str, Any]) -> None:
    assert _readers(matrix, "Foreigner", "fullName") == ["immigration_officer",
                                                         "immigration_supervisor"]


def test_street_address_is_not_the_districts(matrix: dict[str, Any]) -> None:
    readers = _readers(matrix, "Residence", "streetAddress")
    assert "police" in readers and "district" not in readers


def test_police_row_scope_is_their_kecamatan(matrix: dict[str, Any]) -> None:
    assert "kecamatan" in _scope(matrix, "police", "kecamatan", "Foreigner")
    assert _scope(matrix, "police", "kecamatan", "Foreigner") == (
        "current residence in the caller's kecamatan")


def test_district_sees_only_reports_it_submitted(matrix: dict[str, Any]) -> None:
    assert _scope(matrix, "district", "kecamatan", "Report") == (
        "submitted by the caller (same issuer, role and subject)")


def test_public_sees_no_foreigner_rows_and_counts_from_5(matrix: dict[str, Any]) -> None:
    assert _scope(matrix, "public", None, "Foreigner") == "no rows"
    assert matrix["by_role"]["public"]["count_cell_minimum"] == 5


def test_only_supervisor_and_auditor_may_open_the_policy_page(matrix: dict[str, Any]) -> None:
    assert matrix["policy_page"] == ["immigration_supervisor", "auditor"]


# -- the access trail's rules (trail.polar), and a policy that lacks them ----------------


def test_recorded_fields_and_purposes_are_the_compiled_ones(
    matrix: dict[str, Any], policy: Policy, compiled: CompiledPolicy
) -> None:
    assert matrix["recorded_fields"] == [list(pair) for pair in sorted(policy.recorded_fields())]
    for entry in matrix["types"]:
        for row in entry["fields"]:
            assert row["recorded"] == ((entry["type"], row["field"])
                                       in policy.recorded_fields())
    assert [p["name"] for p in matrix["purposes"]] == policy.purposes()
    for purpose in matrix["purposes"]:
        assert purpose["stated_by"] == [r for r in matrix["roles"]
                                        if purpose["name"] in compiled.for_role(r).purposes]
    for role in matrix["roles"]:
        assert matrix["by_role"][role]["purpose_required"] == (
            compiled.for_role(role).purpose_required)


def test_identity_is_recorded_and_immigration_must_state_a_purpose(
    matrix: dict[str, Any]
) -> None:
    assert ["Foreigner", "fullName"] in matrix["recorded_fields"]
    required = [r for r in matrix["roles"] if matrix["by_role"][r]["purpose_required"]]
    assert required == ["immigration_officer", "immigration_supervisor"]
    assert "fullName (recorded)" in to_markdown(matrix)


def test_a_policy_without_trail_rules_reads_none_declared(
    tmp_path: Path, fields: dict[str, list[str]]
) -> None:
    for source in POLICY_DIR.glob("*.polar"):
        if "recorded_field(" not in (text := source.read_text(encoding="utf-8")):
            (tmp_path / source.name).write_text(text, encoding="utf-8")
    policy = Policy(tmp_path)
    matrix = access_matrix(policy, policy.compile(fields))
    assert matrix["recorded_fields"] is None and matrix["purposes"] is None
    assert all(s["purpose_required"] is None for s in matrix["by_role"].values())
    markdown = to_markdown(matrix)
    assert "Recorded fields (`recorded_field`): none declared." in markdown
    assert "Purposes (`purpose`): none declared." in markdown
