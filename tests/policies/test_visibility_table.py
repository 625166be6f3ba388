"""The SPEC's "Default visibility" table, as decision-table rows an auditor can read.

Each row of VISIBILITY is one GraphQL field and, in the column order of ROLES, whether
each role may read it (Y) or not (n). Every cell becomes one test: the raw Oso decision
`allow_field(Principal(role), type, field)` from the `.polar` files, no compilation, no
schema, no database. A row-scope table and the small-cell threshold follow.

A field a role may not read is null in its responses ("null" in the SPEC table); for
"—" (no rows at all) the row scope is empty as well, and the field is denied too.
"""

from __future__ import annotations

import pytest

from policies import Policy, Principal

ROLES = (
    "immigration_officer",
    "immigration_supervisor",
    "police",
    "military",
    "district",
    "neighbourhood",
    "public",
    "auditor",
)

Y, n = True, False

# fmt: off
# (type, field):                              officer supervisor police military district neighbourhood public auditor  # noqa: E501
VISIBILITY: list[tuple[str, str, tuple[bool, ...]]] = [
    # Foreigner identity: name, passport no., birth date, photo, permit no. — immigration only.
    ("Foreigner", "fullName",                  (Y, Y, n, n, n, n, n, n)),
    ("Foreigner", "passportNumber",            (Y, Y, n, n, n, n, n, n)),
    ("Foreigner", "birthDate",                 (Y, Y, n, n, n, n, n, n)),
    ("Foreigner", "photoUrl",                  (Y, Y, n, n, n, n, n, n)),
    ("Foreigner", "permitNumber",              (Y, Y, n, n, n, n, n, n)),
    ("StayPermit", "number",                   (Y, Y, n, n, n, n, n, n)),
    # Identity-grade by the policy: the sponsor's name and former addresses
    # (which may lie outside a partner's jurisdiction).
    ("StayPermit", "sponsorName",              (Y, Y, n, n, n, n, n, n)),
    ("Foreigner", "residenceHistory",          (Y, Y, n, n, n, n, n, n)),
    # Foreigner profile: nationality, sex, age band, permit type/status/expiry, sponsor type.
    ("Foreigner", "id",                        (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "nationality",               (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "sex",                       (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "ageBand",                   (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "permitType",                (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "permitStatus",              (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "permitExpiresOn",           (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "sponsorType",               (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "residence",                 (Y, Y, Y, Y, Y, n, n, n)),
    ("StayPermit", "permitType",               (Y, Y, Y, Y, Y, n, n, n)),
    ("StayPermit", "status",                   (Y, Y, Y, Y, Y, n, n, n)),
    ("StayPermit", "expiresOn",                (Y, Y, Y, Y, Y, n, n, n)),
    ("StayPermit", "sponsorType",              (Y, Y, Y, Y, Y, n, n, n)),
    # Residence: street address and geo point — immigration, police, military.
    ("Residence", "streetAddress",             (Y, Y, Y, Y, n, n, n, n)),
    ("Residence", "latitude",                  (Y, Y, Y, Y, n, n, n, n)),
    ("Residence", "longitude",                 (Y, Y, Y, Y, n, n, n, n)),
    # Residence: area codes down to RT — also the district.
    ("Residence", "areaCode",                  (Y, Y, Y, Y, Y, n, n, n)),
    ("Residence", "area",                      (Y, Y, Y, Y, Y, n, n, n)),
    ("Residence", "kecamatanCode",             (Y, Y, Y, Y, Y, n, n, n)),
    ("Residence", "kelurahanCode",             (Y, Y, Y, Y, Y, n, n, n)),
    ("Residence", "rwCode",                    (Y, Y, Y, Y, Y, n, n, n)),
    ("Residence", "rtCode",                    (Y, Y, Y, Y, Y, n, n, n)),
    # Foreigner counts: everyone but the auditor; breakdowns not for RT/RW heads or the public.
    ("Area", "name",                           (Y, Y, Y, Y, Y, Y, Y, n)),
    ("Area", "foreignerCount",                 (Y, Y, Y, Y, Y, Y, Y, n)),
    ("Area", "byNationality",                  (Y, Y, Y, Y, Y, n, n, n)),
    ("Area", "byPermitType",                   (Y, Y, Y, Y, Y, n, n, n)),
    ("Area", "children",                       (Y, Y, Y, Y, Y, Y, n, n)),
    # Reports: category, text, area, status — whoever sees the row; the public only
    # through ReportStatus, by receipt code.
    ("Report", "category",                     (Y, Y, Y, Y, Y, Y, n, n)),
    ("Report", "text",                         (Y, Y, Y, Y, Y, Y, n, n)),
    ("Report", "area",                         (Y, Y, Y, Y, Y, Y, n, n)),
    ("Report", "areaCode",                     (Y, Y, Y, Y, Y, Y, n, n)),
    ("Report", "status",                       (Y, Y, Y, Y, Y, Y, n, n)),
    ("ReportStatus", "status",                 (Y, Y, Y, Y, Y, Y, Y, Y)),
    # Reports: reporter contact and linked foreigner — immigration only.
    ("Report", "reporterContact",              (Y, Y, n, n, n, n, n, n)),
    ("Report", "foreigner",                    (Y, Y, n, n, n, n, n, n)),
    ("Report", "assignedOfficer",              (Y, Y, n, n, n, n, n, n)),
    # Officer activities: partners see joint operations without subject identity or geo.
    ("Activity", "subject",                    (Y, Y, n, n, n, n, n, n)),
    ("Activity", "latitude",                   (Y, Y, n, n, n, n, n, n)),
    ("Activity", "longitude",                  (Y, Y, n, n, n, n, n, n)),
    ("Activity", "notes",                      (Y, Y, n, n, n, n, n, n)),
    ("Activity", "kind",                       (Y, Y, Y, Y, n, n, n, n)),
    ("Activity", "occurredAt",                 (Y, Y, Y, Y, n, n, n, n)),
    ("Activity", "area",                       (Y, Y, Y, Y, n, n, n, n)),
    ("Activity", "officer",                    (Y, Y, Y, Y, n, n, n, n)),
    ("Officer", "name",                        (Y, Y, Y, Y, n, n, n, n)),
    # Root fields: a denied one is a FORBIDDEN error.
    ("Query", "checkForeigner",                (Y, Y, n, n, n, n, n, n)),
    ("Query", "foreigners",                    (Y, Y, Y, Y, Y, n, n, n)),
    ("Query", "foreigner",                     (Y, Y, Y, Y, Y, n, n, n)),
    ("Query", "reports",                       (Y, Y, Y, Y, Y, Y, n, n)),
    ("Query", "activities",                    (Y, Y, Y, Y, n, n, n, n)),
    ("Query", "areas",                         (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Query", "reportStatus",                  (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Query", "me",                            (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Mutation", "submitReport",               (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Mutation", "updateReport",               (n, Y, n, n, n, n, n, n)),
    ("Mutation", "recordActivity",             (Y, Y, n, n, n, n, n, n)),
]

# (type):        officer      supervisor   police                     military                   district          neighbourhood     public               auditor  # noqa: E501
SCOPES: list[tuple[str, tuple[set[str], ...]]] = [
    ("Foreigner", ({"jurisdiction"}, {"jurisdiction"}, {"jurisdiction"},          {"jurisdiction"},          {"jurisdiction"},  set(),             set(),               set())),  # noqa: E501
    ("Area",      ({"jurisdiction"}, {"jurisdiction"}, {"jurisdiction"},          {"jurisdiction"},          {"jurisdiction"},  {"jurisdiction"},  {"kecamatan_level"}, set())),  # noqa: E501
    ("Report",    ({"jurisdiction"}, {"jurisdiction"}, {"jurisdiction"},          {"jurisdiction"},          {"own_submitted"}, {"own_submitted"}, set(),               set())),  # noqa: E501
    ("Activity",  ({"own_officer"}, {"jurisdiction"}, {"joint_in_jurisdiction"}, {"joint_in_jurisdiction"}, set(),             set(),             set(),               set())),  # noqa: E501
    ("Officer",   ({"serving_jurisdiction"}, {"serving_jurisdiction"}, {"serving_jurisdiction"}, {"serving_jurisdiction"}, set(), set(), set(), set())),  # noqa: E501
]
# fmt: on

FIELD_ROWS = [
    (role, type_name, field_name, allowed[i])
    for type_name, field_name, allowed in VISIBILITY
    for i, role in enumerate(ROLES)
]
SCOPE_ROWS = [
    (role, type_name, scopes[i]) for type_name, scopes in SCOPES for i, role in enumerate(ROLES)
]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy()


def _field_id(row: tuple[str, str, str, bool]) -> str:
    role, type_name, field_name, allowed = row
    return f"{role}:{type_name}.{field_name}={'allowed' if allowed else 'denied'}"


def _scope_id(row: tuple[str, str, set[str]]) -> str:
    role, type_name, scopes = row
    return f"{role}:{type_name}={'+'.join(sorted(scopes)) or 'no-rows'}"


def test_table_has_one_column_per_role_of_the_policy(policy: Policy) -> None:
    assert set(ROLES) == policy.roles
    assert all(len(allowed) == len(ROLES) for _t, _f, allowed in VISIBILITY)
    assert all(len(scopes) == len(ROLES) for _t, scopes in SCOPES)


def test_anonymous_callers_are_the_public(policy: Policy) -> None:
    assert policy.anonymous_role == "public"


@pytest.mark.parametrize(("role", "type_name", "field_name", "expected"), FIELD_ROWS,
                         ids=[_field_id(row) for row in FIELD_ROWS])
def test_field_visibility_by_role(
    policy: Policy, role: str, type_name: str, field_name: str, expected: bool
) -> None:
    assert policy.allow_field(Principal(role=role), type_name, field_name) is expected


@pytest.mark.parametrize(("role", "type_name", "expected"), SCOPE_ROWS,
                         ids=[_scope_id(row) for row in SCOPE_ROWS])
def test_row_scope_by_role(policy: Policy, role: str, type_name: str, expected: set[str]) -> None:
    assert policy.row_scopes(Principal(role=role), type_name) == expected


@pytest.mark.parametrize("role", ROLES)
def test_small_count_cells_are_suppressed_for_the_public_only(policy: Policy, role: str) -> None:
    expected = 5 if role == "public" else None
    assert policy.count_cell_minimum(Principal(role=role)) == expected


@pytest.mark.parametrize("role", ROLES)
def test_no_role_outside_immigration_reads_any_identity_field(policy: Policy, role: str) -> None:
    identity = [("Foreigner", f) for f in
                ("fullName", "passportNumber", "birthDate", "photoUrl", "permitNumber")]
    identity.append(("StayPermit", "number"))
    readable = {(t, f) for t, f in identity if policy.allow_field(Principal(role=role), t, f)}
    if role.startswith("immigration_"):
        assert readable == set(identity)
    else:
        assert readable == set()
