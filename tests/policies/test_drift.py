"""The policy, the schema, the data layer and the Python code cannot drift apart.

- every field the policy names exists in the schema (a renamed field would otherwise be
  silently null for everyone);
- every schema field is readable by at least one role (otherwise nobody ever sees it);
- every field a row rule compares is one the data layer can turn into SQL;
- no role name is written in Python outside the policy loader and the tests
  (SPEC: "Policy is data").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from oso import Oso
from polar import Variable

from policies import CompiledPolicy, Policy, Principal
from policies.resources import RESOURCES
from resolvers.scopes import COLUMNS, untranslatable_fields

ROOT = Path(__file__).resolve().parents[2]
POLICY_LOADER = ROOT / "policies" / "loader.py"
ROLES = sorted(Policy().roles)


@pytest.fixture(scope="module")
def oso(policy: Policy) -> Oso:
    """The same `.polar` files in a fresh Oso, to ask open questions the loader never asks."""
    engine = Oso()
    engine.register_class(Principal, name="Principal")
    for name, (cls, resource_fields) in RESOURCES.items():
        engine.register_class(cls, name=name, fields=resource_fields)
    engine.load_files([str(path) for path in policy.files])
    return engine


def _pairs(oso: Oso, rule: str, *args: object) -> set[tuple[object, object]]:
    """Every (first, second) binding of the two trailing unbound variables of a rule."""
    first, second = Variable("first"), Variable("second")
    # The record forms of allow_field bind the first to a type constraint, not a name.
    results = oso.query_rule(rule, *args, first, second, accept_expression=True)
    pairs = [(r["bindings"].get("first"), r["bindings"].get("second")) for r in results]
    return {(a, b) for a, b in pairs if isinstance(a, str | Variable)}


def test_every_field_the_policy_names_exists_in_the_schema(compiled: CompiledPolicy) -> None:
    assert compiled.unknown == ()


@pytest.mark.parametrize("role", ROLES)
def test_every_type_and_field_the_policy_names_exists_in_the_schema_as(
    role: str, oso: Oso, fields: dict[str, list[str]]
) -> None:
    # Asked with the type unbound too: a misspelt *type* name is drift as well.
    named = _pairs(oso, "allow_field", Principal(role=role), "read")
    wildcards = sorted(str(t) for t, f in named if isinstance(f, Variable))
    missing = sorted(
        (str(t), str(f)) for t, f in named
        if not isinstance(f, Variable) and f not in fields.get(str(t), ())
    )
    assert wildcards == [], "a rule allows every field of a type; name the fields inline"
    assert missing == []


def test_every_schema_field_is_readable_by_some_role(compiled: CompiledPolicy) -> None:
    assert compiled.unmentioned == ()


@pytest.mark.parametrize("role", ROLES)
def test_every_field_a_row_rule_compares_is_a_column_as(
    role: str, compiled: CompiledPolicy
) -> None:
    assert untranslatable_fields(compiled.for_role(role)) == []


def test_every_resource_field_is_a_column_and_every_resource_a_schema_type(
    fields: dict[str, list[str]]
) -> None:
    assert set(RESOURCES) <= set(fields)
    assert {name: set(resource_fields) for name, (_, resource_fields) in RESOURCES.items()} == {
        name: set(columns) for name, columns in COLUMNS.items()
    }


def _python_sources() -> list[Path]:
    files = [path for folder in ("gateway", "schema", "resolvers")
             for path in (ROOT / folder).rglob("*.py")]
    files += (ROOT / "policies").glob("*.py")
    return sorted(path for path in files if path != POLICY_LOADER)


def _role_literals(path: Path, roles: frozenset[str]) -> list[str]:
    """`"police"` or `'police'` as a string literal; prose and longer identifiers don't count."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [
        f"{shown}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and node.value in roles
    ]


def test_python_sources_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in _python_sources()}
    assert {"gateway/app.py", "schema/root.py", "resolvers/scopes.py",
            "policies/principal.py"} <= names
    assert "policies/loader.py" not in names


def test_no_role_name_is_written_in_python_outside_the_policy_loader(policy: Policy) -> None:
    found = [hit for path in _python_sources() for hit in _role_literals(path, policy.roles)]
    assert found == []


def test_role_literal_scan_matches_quoted_literals_only(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        '"""What the police may see is decided in policies/."""\n'
        "police_area = 'police'  # police\n"
        'label = "police officer"\n'
        'ROLES = ("district",)\n',
        encoding="utf-8",
    )
    found = _role_literals(source, frozenset({"police", "district"}))
    assert [hit.split(": ", 1)[1] for hit in found] == ["'police'", "'district'"]


def _policy_with(tmp_path: Path, extra_rules: str) -> Policy:
    for path in Policy().files:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "zz_extra.polar").write_text(extra_rules, encoding="utf-8")
    return Policy(tmp_path)


def test_start_up_report_names_a_misspelt_field(
    tmp_path: Path, fields: dict[str, list[str]]
) -> None:
    policy = _policy_with(tmp_path, 'readable(_role, "Foreigner", field) if field in ["fulName"];')
    assert ("Foreigner", "fulName") in policy.compile(fields).unknown


def test_start_up_report_names_a_misspelt_type(
    tmp_path: Path, fields: dict[str, list[str]]
) -> None:
    policy = _policy_with(tmp_path, 'readable(_role, "Foreigners", field) if field in ["id"];')
    assert ("Foreigners", "id") in policy.compile(fields).unknown
