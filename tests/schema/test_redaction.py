"""`redactedFields` is declared on every domain type, within the bound the cost estimate
multiplies by (schema/redaction.py)."""

from __future__ import annotations

from schema.redaction import MAX_TYPE_FIELDS, REDACTED_FIELDS
from schema.root import build_schema, schema_fields

DOMAIN_TYPES = ("Foreigner", "StayPermit", "Residence", "Report", "Activity", "Officer", "Area")


def test_every_domain_type_says_which_of_its_fields_are_hidden() -> None:
    fields = schema_fields(build_schema())
    assert [name for name in DOMAIN_TYPES if REDACTED_FIELDS not in fields[name]] == []


def test_redacted_fields_bound_covers_every_type() -> None:
    fields = schema_fields(build_schema())
    carrying = {name: names for name, names in fields.items() if REDACTED_FIELDS in names}
    assert set(carrying) == set(DOMAIN_TYPES)
    assert all(len(names) <= MAX_TYPE_FIELDS for names in carrying.values())
