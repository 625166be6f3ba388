"""No linking (SPEC rule 7), as a decision table an auditor can read.

Each row: a record type and, in the column order of ROLES, the k of the raw Oso decision
`location_k_minimum(Principal(role), type, k)` — where records of the type lie is shown
no finer than an enclosing area whose pool leaves k candidates — or `exact` when the
role may read every link of the type to a person. Then: the compiled form (what the
gateway uses) equals Oso, and the free text withheld with a coarsened location.
"""

from __future__ import annotations

import pytest
from conftest import ROLES

from policies import CompiledPolicy, Policy, Principal
from policies.loader import LocationPrecision

exact = None
K = 5

# fmt: off
# type:        officer supervisor police military district neighbourhood public auditor
PRECISION: list[tuple[str, tuple[int | None, ...]]] = [
    # A report's linked foreigner is immigration's: everyone else sees a coarsened place.
    ("Report",    (exact, exact, K, K, K, K, K, K)),
    # An activity's subject (and the report it followed up) are immigration's.
    ("Activity",  (exact, exact, K, K, K, K, K, K)),
    # Records without a hidden link to a person: exact wherever they are visible at all.
    ("Foreigner", (exact, exact, exact, exact, exact, exact, exact, exact)),
    ("Residence", (exact, exact, exact, exact, exact, exact, exact, exact)),
    ("Area",      (exact, exact, exact, exact, exact, exact, exact, exact)),
    ("Officer",   (exact, exact, exact, exact, exact, exact, exact, exact)),
]
# fmt: on

# Free text that may name the place: shown only where the record's own area is shown.
PLACE_TEXT = {"Report": {"text"}, "Activity": {"notes"}}

ROWS = [(role, type_name, ks[i]) for type_name, ks in PRECISION for i, role in enumerate(ROLES)]


def _id(row: tuple[str, str, int | None]) -> str:
    role, type_name, k = row
    return f"{role}:{type_name}={'exact' if k is None else f'k{k}'}"


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_location_precision_per_role(policy: Policy, row: tuple[str, str, int | None]) -> None:
    role, type_name, expected = row
    assert policy.location_k_minimum(Principal(role=role), type_name) == expected


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_compiled_location_precision_equals_oso(
    policy: Policy, compiled: CompiledPolicy, row: tuple[str, str, int | None]
) -> None:
    role, type_name, _expected = row
    k = policy.location_k_minimum(Principal(role=role), type_name)
    found = compiled.for_role(role).location_precision.get(type_name)
    if k is None:
        assert found is None
    else:
        assert found == LocationPrecision(k=k, texts=frozenset(PLACE_TEXT[type_name]))


def test_exact_locations_exactly_for_roles_that_read_every_link(
    compiled: CompiledPolicy,
) -> None:
    """The derivation itself: coarsened ⇔ some declared link field is unreadable."""
    links = {"Report": ["foreigner"], "Activity": ["subject", "report"]}
    for role, access in compiled.by_role.items():
        for type_name, fields in links.items():
            hidden = any(not access.may_read(type_name, f) for f in fields)
            assert (type_name in access.location_precision) is hidden, (role, type_name)


def test_every_location_link_names_a_schema_field(compiled: CompiledPolicy) -> None:
    assert compiled.unknown == ()


def test_a_policy_without_location_rules_sees_exact_locations(tmp_path: object) -> None:
    """Deleting the `hidden_link_location` facts is the one way to turn coarsening off."""
    from pathlib import Path

    from policies.loader import POLICY_DIR

    directory = Path(str(tmp_path))
    for source in POLICY_DIR.glob("*.polar"):
        text = source.read_text()
        lines = [line for line in text.splitlines() if not line.startswith(
            "hidden_link_location(")]
        if any(line.startswith("hidden_link_location(") for line in text.splitlines()):
            lines.append('hidden_link_location("NoSuchType", "link", 5);')
        (directory / source.name).write_text("\n".join(lines) + "\n")
    bare = Policy(directory)
    assert bare.location_k_minimum(Principal(role="police"), "Report") is None
