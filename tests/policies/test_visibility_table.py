"""The SPEC's "Default visibility" table, as decision-table rows an auditor can read.

Each row of VISIBILITY is one GraphQL field and, in the column order of ROLES, whether
each role may read it (Y) or not (n). Every cell becomes one test: the raw Oso decision
`allow_field(Principal(role), type, field)` from the `.polar` files, no compilation, no
schema, no database. A row-visibility table (sample records put to the raw
`allow(actor, "read", record)` rule) and the small-cell threshold follow.

A field a role may not read is null in its responses ("null" in the SPEC table); for
"—" (no rows at all) no record is visible either, and the field is denied too.
"""

from __future__ import annotations

import pytest
from conftest import ROLES

from policies import Policy, Principal
from policies.area_codes import located_codes
from policies.resources import Activity, Area, Foreigner, Officer, Report

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
    # In band, for supergraph clients (issue 9 §2): which fields of a record are hidden,
    # readable by whoever may read the type.
    ("Foreigner", "redactedFields",            (Y, Y, Y, Y, Y, n, n, n)),
    ("Residence", "redactedFields",            (Y, Y, Y, Y, Y, n, n, n)),
    ("Area", "redactedFields",                 (Y, Y, Y, Y, Y, Y, Y, n)),
    ("Report", "redactedFields",               (Y, Y, Y, Y, Y, Y, n, n)),
    ("Activity", "redactedFields",             (Y, Y, Y, Y, n, n, n, n)),
    ("Officer", "redactedFields",              (Y, Y, Y, Y, n, n, n, n)),
    # Root fields: a denied one is a FORBIDDEN error.
    ("Query", "checkForeigner",                (Y, Y, n, n, n, n, n, n)),
    ("Query", "foreigners",                    (Y, Y, Y, Y, Y, n, n, n)),
    ("Query", "foreigner",                     (Y, Y, Y, Y, Y, n, n, n)),
    ("Query", "reports",                       (Y, Y, Y, Y, Y, Y, n, n)),
    ("Query", "activities",                    (Y, Y, Y, Y, n, n, n, n)),
    ("Query", "areas",                         (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Query", "reportStatus",                  (Y, Y, Y, Y, Y, Y, Y, Y)),
    # Whoever holds a receipt code reads the status, and only the status (issue 8 §3):
    # when the office last worked on the report is not status.
    ("ReportStatus", "status",                 (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("ReportStatus", "updatedAt",              (Y, Y, n, n, n, n, n, n)),
    ("Query", "sisadaMe",                      (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Mutation", "submitReport",               (Y, Y, Y, Y, Y, Y, Y, Y)),
    ("Mutation", "updateReport",               (n, Y, n, n, n, n, n, n)),
    ("Mutation", "recordActivity",             (Y, Y, n, n, n, n, n, n)),
]

# Row visibility: sample records put to `allow(actor, "read", record)` for one actor per
# role, each with its demo jurisdiction (ACTORS below).
# (type, record):                                       officer supervisor police military district neighbourhood public auditor  # noqa: E501
ROWS: list[tuple[str, str, tuple[bool, ...]]] = [
    ("Foreigner", "living in Setiabudi",                    (Y, Y, Y, Y, Y, n, n, n)),
    ("Foreigner", "living in Tebet",                        (Y, Y, n, n, n, n, n, n)),
    ("Foreigner", "living in another city",                 (n, n, n, n, n, n, n, n)),
    ("Area",      "kecamatan Setiabudi",                    (Y, Y, Y, Y, Y, n, Y, n)),
    ("Area",      "kecamatan Tebet",                        (Y, Y, n, n, n, n, Y, n)),
    ("Area",      "the RT head's own RT",                   (Y, Y, Y, Y, Y, Y, n, n)),
    ("Area",      "the city",                               (Y, Y, n, n, n, n, n, n)),
    ("Report",    "in Setiabudi, by someone else",          (Y, Y, Y, Y, n, n, n, n)),
    ("Report",    "in Tebet, by the district official",     (Y, Y, n, n, Y, n, n, n)),
    ("Report",    "in Tebet, by the RT head",               (Y, Y, n, n, n, Y, n, n)),
    # "Own" is the same issuer, role and subject (issue 8 §3).
    ("Report",    "in Tebet, by the same subject as police", (Y, Y, n, n, n, n, n, n)),
    ("Report",    "in Tebet, by the same subject elsewhere", (Y, Y, n, n, n, n, n, n)),
    ("Activity",  "officer 1's check in Setiabudi",         (Y, Y, n, n, n, n, n, n)),
    ("Activity",  "officer 3's check in Setiabudi",         (n, Y, n, n, n, n, n, n)),
    ("Activity",  "joint operation in Setiabudi",           (n, Y, Y, Y, n, n, n, n)),
    ("Activity",  "joint operation in Tebet",               (n, Y, n, n, n, n, n, n)),
    ("Activity",  "officer 1 of another office, elsewhere", (n, n, n, n, n, n, n, n)),
    ("Officer",   "of the office of the city",              (Y, Y, Y, Y, n, n, n, n)),
    ("Officer",   "of another city's office",               (n, n, n, n, n, n, n, n)),
]
# fmt: on

FIELD_ROWS = [
    (role, type_name, field_name, allowed[i])
    for type_name, field_name, allowed in VISIBILITY
    for i, role in enumerate(ROLES)
]
SETIABUDI, TEBET, CITY = "31.74.02", "31.74.01", "31.74"
RT = "31.74.02.1001.01.001"
TEBET_RT, OTHER_CITY_RT = "31.74.01.1001.01.001", "31.71.01.1001.01.001"
ISSUER, OTHER_ISSUER = "sisada-dev", "another-idp"
ACTORS = {
    "immigration_officer": Principal("immigration_officer", CITY, 1, "dev:31.74:1",
                                     issuer=ISSUER),
    "immigration_supervisor": Principal("immigration_supervisor", CITY, 2, "dev:31.74:2",
                                        issuer=ISSUER),
    "police": Principal("police", SETIABUDI, None, "dev:polsek", issuer=ISSUER),
    "military": Principal("military", SETIABUDI, None, "dev:koramil", issuer=ISSUER),
    "district": Principal("district", SETIABUDI, None, "dev:district", issuer=ISSUER),
    "neighbourhood": Principal("neighbourhood", RT, None, "dev:rt-head", issuer=ISSUER),
    "public": Principal("public"),
    "auditor": Principal("auditor", None, None, "dev:auditor", issuer=ISSUER),
}
RECORDS: dict[str, object] = {
    "living in Setiabudi": Foreigner(id=1, **located_codes(RT)),
    "living in Tebet": Foreigner(id=2, **located_codes(TEBET_RT)),
    "living in another city": Foreigner(id=3, **located_codes(OTHER_CITY_RT)),
    "kecamatan Setiabudi": Area(code=SETIABUDI, level="kecamatan",
                                **located_codes(SETIABUDI)),
    "kecamatan Tebet": Area(code=TEBET, level="kecamatan", **located_codes(TEBET)),
    "the RT head's own RT": Area(code=RT, level="rt", **located_codes(RT)),
    "the city": Area(code=CITY, level="city", **located_codes(CITY)),
    "in Setiabudi, by someone else": Report(id=1, submitted_by="dev:someone",
                                            **located_codes(RT)),
    "in Tebet, by the district official": Report(
        id=2, submitter_issuer=ISSUER, submitter_role="district", submitted_by="dev:district",
        **located_codes(TEBET_RT)),
    "in Tebet, by the RT head": Report(
        id=3, submitter_issuer=ISSUER, submitter_role="neighbourhood",
        submitted_by="dev:rt-head", **located_codes(TEBET_RT)),
    # The district official's and the RT head's subject, but another role or issuer.
    "in Tebet, by the same subject as police": Report(
        id=4, submitter_issuer=ISSUER, submitter_role="police", submitted_by="dev:district",
        **located_codes(TEBET_RT)),
    "in Tebet, by the same subject elsewhere": Report(
        id=5, submitter_issuer=OTHER_ISSUER, submitter_role="neighbourhood",
        submitted_by="dev:rt-head", **located_codes(TEBET_RT)),
    "officer 1's check in Setiabudi": Activity(id=1, officer_id=1, **located_codes(RT)),
    "officer 3's check in Setiabudi": Activity(id=2, officer_id=3, **located_codes(RT)),
    "joint operation in Setiabudi": Activity(id=3, officer_id=3, joint_operation=True,
                                             **located_codes(RT)),
    "joint operation in Tebet": Activity(id=4, officer_id=3, joint_operation=True,
                                         **located_codes(TEBET_RT)),
    "officer 1 of another office, elsewhere": Activity(id=5, officer_id=1,
                                                       **located_codes(OTHER_CITY_RT)),
    "of the office of the city": Officer(id=1, office_area_code=CITY),
    "of another city's office": Officer(id=2, office_area_code="31.71"),
}
ROW_ROWS = [
    (role, type_name, label, visible[i])
    for type_name, label, visible in ROWS for i, role in enumerate(ROLES)
]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy()


def _field_id(row: tuple[str, str, str, bool]) -> str:
    role, type_name, field_name, allowed = row
    return f"{role}:{type_name}.{field_name}={'allowed' if allowed else 'denied'}"


def _row_id(row: tuple[str, str, str, bool]) -> str:
    role, type_name, label, visible = row
    return f"{role}:{type_name} {label}={'visible' if visible else 'absent'}"


def test_table_has_one_column_per_role_of_the_policy(policy: Policy) -> None:
    assert set(ROLES) == policy.roles
    assert all(len(allowed) == len(ROLES) for _t, _f, allowed in VISIBILITY)
    assert all(len(visible) == len(ROLES) for _t, _l, visible in ROWS)
    assert set(ACTORS) == set(ROLES) and all(a.role == r for r, a in ACTORS.items())


def test_anonymous_callers_are_the_public(policy: Policy) -> None:
    assert policy.anonymous_role == "public"


@pytest.mark.parametrize(("role", "type_name", "field_name", "expected"), FIELD_ROWS,
                         ids=[_field_id(row) for row in FIELD_ROWS])
def test_field_visibility_by_role(
    policy: Policy, role: str, type_name: str, field_name: str, expected: bool
) -> None:
    assert policy.allow_field(Principal(role=role), type_name, field_name) is expected


@pytest.mark.parametrize(("role", "type_name", "label", "expected"), ROW_ROWS,
                         ids=[_row_id(row) for row in ROW_ROWS])
def test_row_visibility_by_role(
    policy: Policy, role: str, type_name: str, label: str, expected: bool
) -> None:
    record = RECORDS[label]
    assert type(record).__name__ == type_name
    assert policy.allow_row(ACTORS[role], record) is expected


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


# Jurisdiction levels a token of each role may carry (issue 8 §3): any other area, or an
# area where none belongs, is a 401. `None` is a token without an area.
# (role):                  city kecamatan kelurahan rw rt none
LEVEL_COLUMNS = ("city", "kecamatan", "kelurahan", "rw", "rt", None)
# fmt: off
JURISDICTIONS: dict[str, tuple[bool, ...]] = {
    "immigration_officer":    (Y, n, n, n, n, n),
    "immigration_supervisor": (Y, n, n, n, n, n),
    "police":                 (Y, Y, n, n, n, n),
    "military":               (Y, Y, n, n, n, n),
    "district":               (n, Y, n, n, n, n),
    "neighbourhood":          (n, n, n, Y, Y, n),
    "auditor":                (n, n, n, n, n, Y),
}
# fmt: on
# The kind of officer a token of each role must name in `officer_id`; others name none.
OFFICER_KINDS = {"immigration_officer": "field", "immigration_supervisor": "supervisor"}


@pytest.mark.parametrize("role", sorted(JURISDICTIONS))
def test_jurisdiction_levels_a_token_may_carry_as(policy: Policy, role: str) -> None:
    levels = policy.jurisdiction_levels.get(role)
    allowed = tuple((level in levels) if levels else level is None for level in LEVEL_COLUMNS)
    assert allowed == JURISDICTIONS[role]


def test_every_role_with_a_token_has_a_jurisdiction_row(policy: Policy) -> None:
    assert set(JURISDICTIONS) == policy.roles - {policy.anonymous_role}


def test_officer_kind_each_role_must_name(policy: Policy) -> None:
    assert policy.officer_kinds == OFFICER_KINDS
